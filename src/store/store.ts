import { createPrivateKey, X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join, relative } from 'node:path';
import type { IssuedCertificate } from '../core/certificate.js';
import type { KeyType } from '../core/keys.js';
import { isForeignPlaceholder, isOwnPlaceholder } from '../core/placeholder.js';
import { certInfo, certSummary, splitPemChain } from '../crypto/pem.js';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { exists, fsyncDir, readIfExists, storageError, symlinkAtomic, writeFileAtomic } from './fsutil.js';
import { FileLocker, lockedError } from './lock.js';
import type { CertState } from './state.js';
import type { SaveInput, Store } from './types.js';

export type { SaveInput } from './types.js';

export const LIVE_FILES = ['cert', 'chain', 'fullchain', 'privkey'] as const;
type LiveFile = (typeof LIVE_FILES)[number];

/** live/<name>/.current: the link to the archive's version folder that is live. */
export const CURRENT = '.current';
/**
 * live/<name>/combined.pem: fullchain and private key in one file (0600), switched with the other four. A reader
 * that takes certificate and key from one open of it (HAProxy's `crt`, most TLS libraries) can never pair a new
 * certificate with an old key. Not part of certbot's layout; versions written before it existed get it on rollback.
 */
export const COMBINED = 'combined';

/** What the combined file holds: the full chain, then the key. */
export function combinedPem(fullchainPem: string, keyPem: string): string {
  const tail = (t: string) => (t.endsWith('\n') ? t : `${t}\n`);
  return tail(fullchainPem) + tail(keyPem);
}

/** Free space needed in storage.path before ordering: a certificate set is ~10 KiB; leave room for state and logs. */
export const MIN_FREE_BYTES = 1024 * 1024;

const README = `This folder is managed by certkeeper.
cert.pem, chain.pem, fullchain.pem and privkey.pem point (through .current) at the
version in ../../archive/<name>/ that is live now. Point your server at these paths;
never move or edit them. A renewal switches all of them at once. combined.pem holds
fullchain and private key in one file (0600): a server that reads certificate and key
from one open of it never sees a new certificate with an old key.
`;

/**
 * certbot-compatible storage:
 *   archive/<name>/{cert,chain,fullchain,privkey}N.pem   real files, one set per version
 *   archive/<name>/.vN/{cert,...}.pem -> ../certN.pem      the set as a folder
 *   live/<name>/.current -> ../../archive/<name>/.vN       switched with one rename
 *   live/<name>/{cert,...}.pem -> .current/{cert,...}.pem  what nginx reads
 *   live/<name>/combined.pem -> .current/combined.pem     fullchain + key in one file (0600)
 * One rename(2) of `.current` switches all files, and a crash leaves either the old set or the new set live.
 * What a reader sees: one open of combined.pem always gives a matching certificate and key; so does a reader that
 * resolves `.current` once and reads its files. A reader that opens cert/fullchain and privkey separately through
 * live/ (nginx does, even when both directives name combined.pem) can straddle a switch; nginx then refuses the pair
 * ("key values mismatch") and keeps serving the set it had, and the reload certkeeper sends after the switch loads
 * the new one.
 */
export class CertStore implements Store {
  readonly locker: FileLocker;

  /**
   * The root normalised once; paths below it are put together by concatenation (names are safe file names: config
   * validation, isSafeFileName): `status` builds six paths for each of 10,000 certificates.
   */
  private readonly base: string;

  constructor(
    readonly root: string,
    opts: { logger?: Logger } = {},
  ) {
    this.locker = new FileLocker(join(root, 'locks'), { logger: opts.logger });
    const normalised = join(root, '.');
    this.base = normalised === '/' ? '' : normalised;
  }

  liveDir(name: string): string {
    return `${this.base}/live/${name}`;
  }
  archiveDir(name: string): string {
    return `${this.base}/archive/${name}`;
  }
  statePath(name: string): string {
    return `${this.base}/state/${name}.json`;
  }
  livePaths(name: string): IssuedCertificate['paths'] {
    const d = this.liveDir(name);
    return {
      cert: `${d}/cert.pem`,
      chain: `${d}/chain.pem`,
      fullchain: `${d}/fullchain.pem`,
      privkey: `${d}/privkey.pem`,
    };
  }

  /** Names with live files or state: configured ones and adopted certbot ones alike. */
  async listNames(): Promise<string[]> {
    const names = new Set<string>();
    for (const e of await readdirSafe(join(this.root, 'live')))
      if (!e.startsWith('.') && e !== 'README') names.add(e);
    for (const e of await readdirSafe(join(this.root, 'state')))
      if (e.endsWith('.json')) names.add(e.slice(0, -5));
    return [...names].sort();
  }

  /** The certificate live now, or undefined when there is none. Reads through certbot's or our symlinks alike. */
  async current(name: string, state?: CertState): Promise<IssuedCertificate | undefined> {
    const paths = this.livePaths(name);
    const [cert, chain, fullchain, privkey] = await Promise.all(
      LIVE_FILES.map((f) => readIfExists(paths[f])),
    );
    if (!fullchain || !privkey) return undefined;
    const leaf = cert ?? splitPemChain(fullchain)[0];
    if (!leaf) return undefined;
    const info = certSummary(leaf);
    const st = state ?? (await this.readState(name));
    return {
      name,
      domains: st?.domains ?? info.subjectAltNames,
      keyType: st?.keyType ?? keyTypeOf(privkey),
      certPem: leaf,
      chainPem: chain ?? splitPemChain(fullchain).slice(1).join(''),
      fullchainPem: fullchain,
      keyPem: privkey,
      serial: info.serial,
      notBefore: info.notBefore,
      notAfter: info.notAfter,
      version: (await this.currentVersion(name)) ?? st?.version ?? 0,
      paths,
      placeholder:
        st?.placeholder === true ||
        (st?.serial !== info.serial && (isForeignPlaceholder(leaf) || isOwnPlaceholder(leaf))),
    };
  }

  /** The archive version `.current` points at (undefined for certbot-style or missing live files). */
  async currentVersion(name: string): Promise<number | undefined> {
    try {
      const target = await fs.readlink(join(this.liveDir(name), CURRENT));
      const m = /\.v(\d+)$/.exec(target);
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Versions present in the archive (certbot's certN.pem and ours alike), ascending. */
  async versions(name: string): Promise<number[]> {
    const seen = new Set<number>();
    for (const e of await readdirSafe(this.archiveDir(name))) {
      const m = /^(?:fullchain(\d+)\.pem|\.v(\d+))$/.exec(e);
      if (m) seen.add(Number(m[1] ?? m[2]));
    }
    return [...seen].sort((a, b) => a - b);
  }

  /**
   * Writes a new version to the archive and switches live to it atomically.
   * Returns what is live afterwards.
   */
  async save(name: string, input: SaveInput): Promise<IssuedCertificate> {
    const blocks = splitPemChain(input.fullchainPem);
    if (blocks.length === 0) {
      throw new CertkeeperError('store', 'the CA returned no PEM certificate', {
        cert: name,
        hint: 'check the CA; nothing was changed on disk',
      });
    }
    const files: Record<LiveFile, string> = {
      cert: blocks[0]!,
      chain: blocks.slice(1).join(''),
      fullchain: blocks.join(''),
      privkey: input.keyPem,
    };
    // A placeholder is written without fsync: losing it in a power cut costs a re-write at the next run (a
    // certificate read back broken counts as missing, and our placeholder is recognised without its state). A real
    // certificate's files, its version folder and the switch are each on disk before the next step depends on them.
    const durable = input.placeholder !== true;
    await this.ensureIndirection(name).catch((err: unknown) => {
      throw storageError(err, this.liveDir(name));
    });
    const archive = this.archiveDir(name);
    await fs.mkdir(archive, { recursive: true, mode: 0o755 }).catch((err: unknown) => {
      throw storageError(err, archive);
    });
    const existing = await this.versions(name);
    // A first-boot placeholder is version 0, so the first real certificate is version 1 as with certbot.
    const version = input.placeholder && existing.length === 0 ? 0 : (existing.at(-1) ?? 0) + 1;
    const vdir = join(archive, `.v${version}`);
    try {
      // 1. the files themselves (a crash here leaves unreferenced files, never a partial live set); the archive
      // folder is synced once for all five
      const put = { durable, syncDir: false, mkdir: false };
      await Promise.all([
        ...LIVE_FILES.map((f) =>
          writeFileAtomic(
            join(archive, `${f}${version}.pem`),
            files[f],
            f === 'privkey' ? 0o600 : 0o644,
            put,
          ),
        ),
        writeFileAtomic(
          join(archive, `${COMBINED}${version}.pem`),
          combinedPem(files.fullchain, files.privkey),
          0o600,
          put,
        ),
      ]);
      // 2. the version folder (an explicit mode: umask 000 must not make it world-writable)
      try {
        await fs.rm(vdir, { recursive: true, force: true });
        await fs.mkdir(vdir, { mode: 0o755 });
        await Promise.all(
          [...LIVE_FILES, COMBINED].map((f) => fs.symlink(`../${f}${version}.pem`, join(vdir, `${f}.pem`))),
        );
      } catch (err) {
        throw storageError(err, vdir);
      }
      if (durable) await Promise.all([fsyncDir(vdir), fsyncDir(archive)]);
      await this.ensureCombinedLink(name);
      // 3. the switch (live's folder synced with it: the links made above are in the same folder)
      await this.pointCurrentAt(name, version, durable);
    } catch (err) {
      // Nothing went live: remove the partial version so failed attempts (a full disk) leave nothing behind.
      if ((await this.currentVersion(name)) !== version) {
        await fs.rm(vdir, { recursive: true, force: true }).catch(() => {});
        await Promise.all(
          [...LIVE_FILES, COMBINED].map((f) =>
            fs.rm(join(archive, `${f}${version}.pem`), { force: true }).catch(() => {}),
          ),
        );
      }
      throw err;
    }
    const info = certSummary(files.cert);
    const now = new Date().toISOString();
    const state = await this.updateState(
      name,
      {
        domains: input.domains,
        keyType: input.keyType,
        serial: info.serial,
        notBefore: info.notBefore.toISOString(),
        notAfter: info.notAfter.toISOString(),
        version,
        issuedAt: now,
        placeholder: input.placeholder === true,
        ...input.state,
      },
      { durable },
    );
    // What live/ shows must be what was just written: one read of the leaf through the links, not a full current().
    const paths = this.livePaths(name);
    const shown = await readIfExists(paths.cert).catch(() => undefined);
    let shownSerial: string | undefined;
    try {
      shownSerial = shown === undefined ? undefined : certSummary(shown).serial;
    } catch {
      shownSerial = undefined;
    }
    if (shownSerial !== info.serial) {
      throw new CertkeeperError('store', `live/${name} does not show the certificate just written`, {
        cert: name,
        hint: 'something else is changing the live folder; stop it and run certkeeper renew again',
      });
    }
    return {
      name,
      domains: state.domains ?? info.subjectAltNames,
      keyType: state.keyType ?? input.keyType,
      certPem: files.cert,
      chainPem: files.chain,
      fullchainPem: files.fullchain,
      keyPem: files.privkey,
      serial: info.serial,
      notBefore: info.notBefore,
      notAfter: info.notAfter,
      version,
      paths,
      placeholder: state.placeholder === true,
    };
  }

  /**
   * Switches live back to the newest complete, verified version older than the current one: its version folder
   * links the four files, they parse, the key opens the certificate and the full chain starts with it. A folder
   * left half-made by a crash (or by hand) is never made live.
   */
  async rollback(name: string): Promise<IssuedCertificate | undefined> {
    const cur = await this.currentVersion(name);
    const candidates = (await readdirSafe(this.archiveDir(name)))
      .map((e) => /^\.v(\d+)$/.exec(e)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number)
      .filter((v) => cur === undefined || v < cur)
      .sort((a, b) => b - a);
    let prev: number | undefined;
    let leaf = '';
    for (const v of candidates) {
      const checked = await this.verifiedVersion(name, v);
      if (checked) {
        prev = v;
        leaf = checked.cert;
        break;
      }
    }
    if (prev === undefined) return undefined;
    await this.ensureCombined(name, prev);
    await this.ensureCombinedLink(name);
    await this.pointCurrentAt(name, prev);
    const info = certInfo(leaf);
    const state = await this.readState(name);
    await this.updateState(name, {
      serial: info.serial,
      notBefore: info.notBefore.toISOString(),
      notAfter: info.notAfter.toISOString(),
      version: prev,
      placeholder: prev === state?.version ? state.placeholder : false,
    });
    return this.current(name);
  }

  /** The files of version `v` when its folder is complete and they form a matching set; undefined otherwise. */
  private async verifiedVersion(name: string, v: number): Promise<Record<LiveFile, string> | undefined> {
    const vdir = join(this.archiveDir(name), `.v${v}`);
    const files = {} as Record<LiveFile, string>;
    for (const f of LIVE_FILES) {
      const link = await fs.readlink(join(vdir, `${f}.pem`)).catch(() => undefined);
      if (link !== `../${f}${v}.pem`) return undefined;
      const text = await readIfExists(join(this.archiveDir(name), `${f}${v}.pem`)).catch(() => undefined);
      // chain.pem is empty for a self-signed placeholder; every other file has content
      if (text === undefined || (text === '' && f !== 'chain')) return undefined;
      files[f] = text;
    }
    try {
      const leaf = new X509Certificate(files.cert);
      const first = splitPemChain(files.fullchain)[0];
      if (!first || new X509Certificate(first).fingerprint256 !== leaf.fingerprint256) return undefined;
      if (!leaf.checkPrivateKey(createPrivateKey(files.privkey))) return undefined;
    } catch {
      return undefined;
    }
    return files;
  }

  /** Version `v`'s combined file and its link in the version folder, for versions written before it existed. */
  private async ensureCombined(name: string, v: number): Promise<void> {
    const archive = this.archiveDir(name);
    const link = join(archive, `.v${v}`, `${COMBINED}.pem`);
    if (await exists(link)) return;
    const [fullchain, key] = await Promise.all([
      fs.readFile(join(archive, `fullchain${v}.pem`), 'utf8'),
      fs.readFile(join(archive, `privkey${v}.pem`), 'utf8'),
    ]);
    await writeFileAtomic(join(archive, `${COMBINED}${v}.pem`), combinedPem(fullchain, key), 0o600);
    await fs.symlink(`../${COMBINED}${v}.pem`, link);
  }

  /** live/<name>/combined.pem → .current/combined.pem, made once. */
  private async ensureCombinedLink(name: string): Promise<void> {
    const path = join(this.liveDir(name), `${COMBINED}.pem`);
    if ((await fs.readlink(path).catch(() => undefined)) === `${CURRENT}/${COMBINED}.pem`) return;
    // live's folder is synced by the switch that follows
    await symlinkAtomic(`${CURRENT}/${COMBINED}.pem`, path, { syncDir: false });
  }

  private async pointCurrentAt(name: string, version: number, durable = true): Promise<void> {
    const live = this.liveDir(name);
    const target = relative(live, join(this.archiveDir(name), `.v${version}`));
    await symlinkAtomic(target, join(live, CURRENT), { syncDir: durable });
  }

  private async makeVersionDir(name: string, version: number): Promise<void> {
    const vdir = join(this.archiveDir(name), `.v${version}`);
    await fs.mkdir(vdir, { recursive: true, mode: 0o755 });
    for (const f of LIVE_FILES) {
      const link = join(vdir, `${f}.pem`);
      await fs.rm(link, { force: true });
      await fs.symlink(`../${f}${version}.pem`, link);
    }
  }

  /**
   * Makes live/<name>/X.pem point through `.current`. For a fresh name that is all; for a certbot-adopted
   * name (links straight into archive, or plain files) the current content is first captured as a version
   * and `.current` made to point at it, so each of the four one-at-a-time link swaps keeps serving the same set.
   */
  private async ensureIndirection(name: string): Promise<void> {
    const live = this.liveDir(name);
    await fs.mkdir(live, { recursive: true, mode: 0o755 });
    const paths = this.livePaths(name);
    const links = await Promise.all(LIVE_FILES.map((f) => fs.readlink(paths[f]).catch(() => undefined)));
    if (links.every((l, i) => l === `${CURRENT}/${LIVE_FILES[i]}.pem`)) return;
    if (await exists(paths.fullchain)) {
      // Adopt: copy what is served now into a new archive version and point .current at it.
      const contents = await Promise.all(LIVE_FILES.map((f) => readIfExists(paths[f])));
      const archive = this.archiveDir(name);
      await fs.mkdir(archive, { recursive: true, mode: 0o755 });
      const version = ((await this.versions(name)).at(-1) ?? 0) + 1;
      const fullchain = contents[2]!;
      const blocks = splitPemChain(fullchain);
      const fill: Record<LiveFile, string> = {
        cert: contents[0] ?? blocks[0] ?? '',
        chain: contents[1] ?? blocks.slice(1).join(''),
        fullchain,
        privkey: contents[3] ?? '',
      };
      for (const f of LIVE_FILES) {
        await writeFileAtomic(join(archive, `${f}${version}.pem`), fill[f], f === 'privkey' ? 0o600 : 0o644);
      }
      await this.makeVersionDir(name, version);
      if (fill.privkey) await this.ensureCombined(name, version);
      await this.pointCurrentAt(name, version);
    }
    // live's folder is synced by the switch that follows (pointCurrentAt)
    for (const f of LIVE_FILES) await symlinkAtomic(`${CURRENT}/${f}.pem`, paths[f], { syncDir: false });
    if (!(await exists(join(live, 'README'))))
      await writeFileAtomic(join(live, 'README'), README, 0o644, { durable: false });
  }

  /** Refuses (before anything is ordered) when storage.path has less than MIN_FREE_BYTES free. */
  async checkSpace(name: string): Promise<void> {
    let st: Awaited<ReturnType<typeof fs.statfs>>;
    try {
      await fs.mkdir(this.root, { recursive: true });
      st = await fs.statfs(this.root);
    } catch {
      return; // cannot tell: the writes themselves will say
    }
    const free = Number(st.bavail) * Number(st.bsize);
    if (free < MIN_FREE_BYTES) {
      throw new CertkeeperError(
        'store',
        `storage.path (${this.root}) has only ${Math.floor(free / 1024)} KiB free; not ordering a certificate that could not be stored`,
        {
          cert: name,
          code: 'CK_ERR_DISK_FULL',
          hint: `free space on the filesystem of ${this.root} (certkeeper needs at least ${MIN_FREE_BYTES / 1024 / 1024} MiB), then run certkeeper renew`,
        },
      );
    }
  }

  async readState(name: string): Promise<CertState | undefined> {
    const text = await readIfExists(this.statePath(name));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as CertState;
    } catch {
      throw new CertkeeperError('store', `state/${name}.json is not valid JSON`, {
        cert: name,
        hint: `delete ${this.statePath(name)}; certkeeper rebuilds it from the live certificate`,
      });
    }
  }

  /** `durable: false`: no fsync (a placeholder's state, see save()). */
  async writeState(name: string, state: CertState, opts: { durable?: boolean } = {}): Promise<void> {
    await writeFileAtomic(this.statePath(name), `${JSON.stringify(state, null, 2)}\n`, 0o644, opts);
  }

  /** Read-modify-write of the state file. Callers hold the certificate's lock. */
  async updateState(
    name: string,
    patch: Partial<CertState>,
    opts: { durable?: boolean } = {},
  ): Promise<CertState> {
    const prev = (await this.readState(name)) ?? { name };
    const next: CertState = { ...prev, ...patch, name };
    await this.writeState(name, next, opts);
    return next;
  }

  /** The certificate's lock, now or never: throws a 'lock' error naming the holder when someone alive has it. */
  async lock(name: string): Promise<() => Promise<void>> {
    const l = await this.locker.tryLock(name);
    if (!l) throw lockedError(name, await this.locker.holder(name), 0);
    return () => l.release();
  }
}

/** Key type of an adopted key that has no state yet; the config's keyType wins on the next renewal. */
export function keyTypeOf(keyPem: string): KeyType {
  const key = createPrivateKey(keyPem);
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 2048;
    return bits >= 4096 ? 'rsa-4096' : bits >= 3072 ? 'rsa-3072' : 'rsa-2048';
  }
  return d.namedCurve === 'secp384r1' ? 'ecdsa-p384' : 'ecdsa-p256';
}

async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch {
    return [];
  }
}
