/**
 * Starts Debian's Pebble (ACME test CA) and pebble-challtestsrv (fake DNS) on loopback free ports.
 * challtestsrv answers A 127.0.0.1 for every name and serves TXT records set through its management API;
 * Pebble resolves through it, so HTTP-01 validation dials 127.0.0.1:<httpPort> and DNS-01 reads those TXT records.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCA, issueLeaf } from '../../src/crypto/selfsigned.js';
import { requireBinaries } from './env.js';
import { simpleRequest } from './http.js';
import { freePorts, isListening, pollUntil } from './ports.js';
import { type ManagedProcess, spawnManaged } from './proc.js';

export const PEBBLE_BIN = '/usr/bin/pebble';
export const CHALLTESTSRV_BIN = '/usr/bin/pebble-challtestsrv';

export interface PebbleOptions {
  /** Port Pebble's VA dials for HTTP-01 (default: a free port; put nginx or a solver there). */
  httpPort?: number;
  /** Percentage of good nonces Pebble rejects (PEBBLE_WFE_NONCEREJECT). Default 0. */
  nonceReject?: number;
  /** Extra environment for Pebble, e.g. { PEBBLE_AUTHZREUSE: '0' }. */
  env?: Record<string, string>;
  /** Require External Account Binding with these kid → base64url HMAC keys. */
  eabKeys?: Record<string, string>;
  /** Lifetime of issued certificates in seconds (Pebble's certificateValidityPeriod; default: Pebble's 5 years). */
  certificateValidityPeriod?: number;
}

export interface PebbleHandle {
  /** https://127.0.0.1:P/dir */
  directoryUrl: string;
  /** PEM trusting Pebble's own HTTPS listener (certkeeper's acme.caBundle). */
  caBundlePath: string;
  /** https://127.0.0.1:M */
  managementUrl: string;
  /** "127.0.0.1:D": challtestsrv DNS. */
  dnsServer: string;
  /** http://127.0.0.1:C: challtestsrv management API. */
  challtestsrvUrl: string;
  httpPort: number;
  dir: string;
  rootPem(): Promise<string>;
  intermediatePem(): Promise<string>;
  setTxt(host: string, value: string): Promise<void>;
  clearTxt(host: string): Promise<void>;
  /** Stops Pebble and starts it again on the same ports: a CA reset, every account and order forgotten. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const READY_ATTEMPTS = 200; // × 50 ms = 10 s: Pebble makes its root/intermediate keys at start; 2 shared cores.

function fqdn(host: string): string {
  return host.endsWith('.') ? host : `${host}.`;
}

export async function startPebble(opts: PebbleOptions = {}): Promise<PebbleHandle> {
  requireBinaries(PEBBLE_BIN, CHALLTESTSRV_BIN);
  // A free port can be taken by a parallel test between our check and Pebble's bind: try fresh ports then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPebbleOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !isPortClash(err)) throw err;
    }
  }
}

/**
 * pebble-challtestsrv as a DNS server only, on loopback: A 127.0.0.1 for every name, and the TXT records set through
 * its management API. The HTTP-01/TLS-ALPN-01 responders stay off.
 */
export function spawnChalltestsrv(p: { dnsPort: number; mgmtPort: number; dir: string }): ManagedProcess {
  return spawnManaged(
    'pebble-challtestsrv',
    CHALLTESTSRV_BIN,
    [
      '-dns01',
      `127.0.0.1:${p.dnsPort}`,
      '-management',
      `127.0.0.1:${p.mgmtPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
    ],
    {
      logPath: join(p.dir, 'challtestsrv.log'),
      cwd: p.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    },
  );
}

export function isPortClash(err: unknown): boolean {
  return err instanceof Error && /address already in use/i.test(err.message);
}

async function startPebbleOnce(opts: PebbleOptions): Promise<PebbleHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'ck-pebble-'));
  const procs: ManagedProcess[] = [];
  const stopAll = async () => {
    await Promise.all(procs.map((p) => p.stop()));
  };
  try {
    const [acmePort, mgmtPort, tlsPort, dnsPort, ctsPort, defaultHttp] = await freePorts(6);
    const httpPort = opts.httpPort ?? (defaultHttp as number);

    // Pebble's own HTTPS certificate, from a throw-away CA whose root is the bundle clients trust.
    const ca = await createTestCA({ commonName: 'certkeeper harness CA for Pebble' });
    const leaf = await issueLeaf(ca, { altNames: ['127.0.0.1', 'localhost'], days: 2 });
    const caBundlePath = join(dir, 'pebble-https-ca.pem');
    const certPath = join(dir, 'pebble-https.pem');
    const keyPath = join(dir, 'pebble-https.key');
    await writeFile(caBundlePath, ca.certPem);
    await writeFile(certPath, leaf.certPem);
    await writeFile(keyPath, leaf.keyPem, { mode: 0o600 });
    const caPem = ca.certPem;

    const configPath = join(dir, 'pebble-config.json');
    await writeFile(
      configPath,
      `${JSON.stringify(
        {
          pebble: {
            listenAddress: `127.0.0.1:${acmePort}`,
            managementListenAddress: `127.0.0.1:${mgmtPort}`,
            certificate: certPath,
            privateKey: keyPath,
            httpPort,
            tlsPort,
            ocspResponderURL: '',
            externalAccountBindingRequired: opts.eabKeys !== undefined,
            ...(opts.eabKeys ? { externalAccountMACKeys: opts.eabKeys } : {}),
            ...(opts.certificateValidityPeriod
              ? { certificateValidityPeriod: opts.certificateValidityPeriod }
              : {}),
          },
        },
        null,
        2,
      )}\n`,
    );

    const cts = spawnChalltestsrv({ dnsPort: dnsPort as number, mgmtPort: ctsPort as number, dir });
    procs.push(cts);

    const spawnPebble = () =>
      spawnManaged('pebble', PEBBLE_BIN, ['-config', configPath, '-dnsserver', `127.0.0.1:${dnsPort}`], {
        logPath: join(dir, 'pebble.log'),
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          PEBBLE_VA_NOSLEEP: '1',
          PEBBLE_WFE_NONCEREJECT: String(opts.nonceReject ?? 0),
          ...opts.env,
        },
      });
    let pebble = spawnPebble();
    procs.push(pebble);

    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    const managementUrl = `https://127.0.0.1:${mgmtPort}`;
    const challtestsrvUrl = `http://127.0.0.1:${ctsPort}`;
    const dead = () => procs.some((p) => p.exitCode() !== undefined);

    const ctsReady = await pollUntil(() => isListening(ctsPort as number), {
      attempts: READY_ATTEMPTS,
      abort: dead,
    });
    if (!ctsReady)
      throw new Error(
        `pebble-challtestsrv did not start (exit: ${cts.exitCode() ?? 'still running'}):\n${cts.tail()}`,
      );
    const waitForPebble = async () => {
      const pebbleReady = await pollUntil(
        async () => (await simpleRequest(directoryUrl, { ca: caPem, timeoutMs: 1000 })).status === 200,
        { attempts: READY_ATTEMPTS, abort: dead },
      );
      if (!pebbleReady) {
        throw new Error(
          `Pebble did not serve ${directoryUrl} (exit: ${pebble.exitCode() ?? 'still running'}):\n${pebble.tail()}\n` +
            `challtestsrv:\n${cts.tail(10)}`,
        );
      }
    };
    await waitForPebble();

    const mgmtGet = async (path: string): Promise<string> => {
      const res = await simpleRequest(`${managementUrl}${path}`, { ca: caPem });
      if (res.status !== 200)
        throw new Error(`Pebble management ${path} answered ${res.status}: ${res.body}`);
      return res.body;
    };
    const ctsPost = async (path: string, body: unknown): Promise<void> => {
      const res = await simpleRequest(`${challtestsrvUrl}${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      if (res.status !== 200) throw new Error(`challtestsrv ${path} answered ${res.status}: ${res.body}`);
    };

    let stopped = false;
    return {
      directoryUrl,
      caBundlePath,
      managementUrl,
      dnsServer: `127.0.0.1:${dnsPort}`,
      challtestsrvUrl,
      httpPort,
      dir,
      rootPem: () => mgmtGet('/roots/0'),
      intermediatePem: () => mgmtGet('/intermediates/0'),
      setTxt: (host, value) => ctsPost('/set-txt', { host: fqdn(host), value }),
      clearTxt: (host) => ctsPost('/clear-txt', { host: fqdn(host) }),
      async restart() {
        await pebble.stop();
        procs.splice(procs.indexOf(pebble), 1);
        pebble = spawnPebble();
        procs.push(pebble);
        await waitForPebble();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
