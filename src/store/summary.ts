import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import type { LiveSummary } from '../core/certificate.js';
import type { CertState } from '../core/state.js';
import { certSummary, splitPemChain } from '../crypto/pem.js';
import { CertkeeperError } from '../errors.js';
import { type CertStore, CURRENT, keyTypeOf } from './store.js';

function readSync(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The live certificate as the state describes it, when the state provably describes what is live: live/<name>/.current
 * points at the version the state names (save() and rollback() switch first and write the state after, so a crash
 * between the two shows as a mismatch), and the full chain and key are there. Saves reading and decoding the leaf:
 * a quarter of `status` over 1,000 certificates. Anything else (certbot's layout, no state, a mismatch): undefined.
 */
function stateSummary(
  store: CertStore,
  name: string,
  state: CertState | undefined,
  paths: ReturnType<CertStore['livePaths']>,
): LiveSummary | undefined {
  if (
    !state?.serial ||
    !state.notBefore ||
    !state.notAfter ||
    state.version === undefined ||
    !state.keyType ||
    !state.domains
  )
    return undefined;
  let target: string;
  try {
    target = readlinkSync(`${store.liveDir(name)}/${CURRENT}`);
  } catch {
    return undefined;
  }
  if (!target.endsWith(`/.v${state.version}`)) return undefined;
  if (!existsSync(paths.fullchain) || !existsSync(paths.privkey)) return undefined;
  const notBefore = new Date(state.notBefore);
  const notAfter = new Date(state.notAfter);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) return undefined;
  return {
    domains: state.domains,
    keyType: state.keyType,
    serial: state.serial,
    notBefore,
    notAfter,
    ...(state.placeholder === true && { placeholder: true }),
  };
}

/**
 * What `certkeeper status` shows of one certificate: its state and the live leaf's serial, validity and names —
 * the same answers as `store.readState` + `store.current`, without reading the chain or (when the state knows the
 * key type) the private key. Synchronous: a one-shot command over 10,000 certificates spends most of its time in
 * the thread-pool round trips of promise-based reads (five per file), not in the disk.
 */
export function readStatusSync(store: CertStore, name: string): { state?: CertState; live?: LiveSummary } {
  const text = readSync(store.statePath(name));
  let state: CertState | undefined;
  if (text !== undefined) {
    try {
      state = JSON.parse(text) as CertState;
    } catch {
      throw new CertkeeperError('store', `state/${name}.json is not valid JSON`, {
        cert: name,
        hint: `delete ${store.statePath(name)}; certkeeper rebuilds it from the live certificate`,
      });
    }
  }
  const paths = store.livePaths(name);
  const fromState = stateSummary(store, name, state, paths);
  if (fromState) return { state, live: fromState };
  try {
    const cert = readSync(paths.cert);
    const fullchain = cert === undefined ? readSync(paths.fullchain) : undefined;
    const leaf = cert ?? (fullchain ? splitPemChain(fullchain)[0] : undefined);
    if (!leaf) return { state };
    // store.current counts a certificate as live only with its fullchain and key beside it
    if (cert !== undefined && !existsSync(paths.fullchain)) return { state };
    const keyPem = state?.keyType ? undefined : readSync(paths.privkey);
    if (state?.keyType ? !existsSync(paths.privkey) : !keyPem) return { state };
    const keyType = state?.keyType ?? keyTypeOf(keyPem!);
    const info = certSummary(leaf);
    return {
      state,
      live: {
        domains: state?.domains ?? info.subjectAltNames,
        keyType,
        serial: info.serial,
        notBefore: info.notBefore,
        notAfter: info.notAfter,
        ...(state?.placeholder === true && { placeholder: true }),
      },
    };
  } catch {
    // as status did with store.current(): an unreadable certificate shows as missing
    return { state };
  }
}
