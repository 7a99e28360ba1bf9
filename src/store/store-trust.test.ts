import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { certInfo, keyMatchesCert, splitPemChain } from '../crypto/pem.js';
import { createTestCA, issueLeaf } from '../crypto/selfsigned.js';
import { CertStore } from './store.js';

let root: string;
let store: CertStore;

async function bundle(names = ['a.example.com']) {
  const ca = await createTestCA({ commonName: 'store trust test CA' });
  const leaf = await issueLeaf(ca, { altNames: names, days: 90 });
  return { fullchainPem: leaf.certPem + ca.certPem, keyPem: leaf.keyPem, leafPem: leaf.certPem };
}
const save = async (b: Awaited<ReturnType<typeof bundle>>) =>
  store.save('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...b });

const KEY_BLOCK = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/;

beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'ck-store-trust-'));
  store = new CertStore(root);
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('CertStore: rollback only to complete, verified versions', () => {
  it.each([
    ['a truncated certificate', async (a: string) => fs.writeFile(join(a, 'cert2.pem'), '-----BEGIN CERT')],
    ['a missing link', async (a: string) => fs.rm(join(a, '.v2', 'privkey.pem'))],
    [
      'a key that does not open the certificate',
      async (a: string) => fs.writeFile(join(a, 'privkey2.pem'), (await bundle()).keyPem),
    ],
    [
      'a link to another version',
      async (a: string) => {
        await fs.rm(join(a, '.v2', 'cert.pem'));
        await fs.symlink('../cert1.pem', join(a, '.v2', 'cert.pem'));
      },
    ],
  ])('skips a version folder with %s', async (_what, spoil) => {
    const b1 = await bundle();
    await save(b1);
    await save(await bundle());
    await save(await bundle());
    await spoil(store.archiveDir('a'));
    const back = await store.rollback('a');
    expect(back?.version).toBe(1);
    expect(back?.serial).toBe(certInfo(b1.leafPem).serial);
    const live = store.livePaths('a');
    expect(
      keyMatchesCert(await fs.readFile(live.privkey, 'utf8'), await fs.readFile(live.cert, 'utf8')),
    ).toBe(true);
  });

  it('returns undefined and changes nothing when no older version is whole', async () => {
    await save(await bundle());
    const b2 = await bundle();
    await save(b2);
    await fs.writeFile(join(store.archiveDir('a'), 'privkey1.pem'), '');
    expect(await store.rollback('a')).toBeUndefined();
    expect((await store.current('a'))?.serial).toBe(certInfo(b2.leafPem).serial);
  });
});

describe('CertStore: combined.pem', () => {
  it('is fullchain + key, 0600, switched with the other files, and made for older versions on rollback', async () => {
    const b1 = await bundle();
    await save(b1);
    const path = join(store.liveDir('a'), 'combined.pem');
    expect(await fs.readFile(path, 'utf8')).toBe(b1.fullchainPem + b1.keyPem);
    expect((await fs.stat(path)).mode & 0o777).toBe(0o600);
    // a version written before combined.pem existed
    await fs.rm(join(store.archiveDir('a'), '.v1', 'combined.pem'));
    await fs.rm(join(store.archiveDir('a'), 'combined1.pem'));
    const b2 = await bundle();
    await save(b2);
    expect(await fs.readFile(path, 'utf8')).toBe(b2.fullchainPem + b2.keyPem);
    await store.rollback('a');
    expect(await fs.readFile(path, 'utf8')).toBe(b1.fullchainPem + b1.keyPem);
  });

  it('a reader taking certificate and key from one open never sees a mismatched pair during many saves', async () => {
    await save(await bundle());
    const bundles = await Promise.all(Array.from({ length: 40 }, () => bundle()));
    const path = join(store.liveDir('a'), 'combined.pem');
    let stop = false;
    let reads = 0;
    const mismatches: number[] = [];
    const reader = (async () => {
      while (!stop) {
        const fh = await fs.open(path, 'r');
        const text = await fh.readFile('utf8').finally(() => fh.close());
        const cert = splitPemChain(text)[0]!;
        const key = KEY_BLOCK.exec(text)?.[0] ?? '';
        if (!keyMatchesCert(key, cert)) mismatches.push(reads);
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (const b of bundles) await save(b);
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(bundles.length);
    expect(mismatches).toEqual([]);
    expect(await fs.readFile(path, 'utf8')).toBe(bundles.at(-1)!.fullchainPem + bundles.at(-1)!.keyPem);
  });
});

describe('CertStore: umask', () => {
  it('umask 000 makes no world-writable folder or file', async () => {
    const old = process.umask(0);
    try {
      await save(await bundle());
      await save(await bundle());
      await store.updateState('a', { failures: 1 });
    } finally {
      process.umask(old);
    }
    const loose: string[] = [];
    const walk = async (dir: string) => {
      for (const e of await fs.readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isSymbolicLink()) continue;
        if (((await fs.stat(p)).mode & 0o002) !== 0) loose.push(p);
        if (e.isDirectory()) await walk(p);
      }
    };
    await walk(root);
    expect(loose).toEqual([]);
  });
});

/** A 96 KiB tmpfs: certkeeper runs as root in CI, where mounting works; elsewhere this block is skipped. */
function tryMount(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k,mode=0755', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  const d = mkdtempSync(join(tmpdir(), 'ck-mount-probe-'));
  const ok = tryMount(d);
  if (ok) execFileSync('umount', [d]);
  rmSync(d, { recursive: true, force: true });
  return ok;
})();

describe.skipIf(!canMount)('CertStore on a full or read-only storage (needs root to mount a tmpfs)', () => {
  let mnt: string;
  beforeEach(async () => {
    mnt = await fs.mkdtemp(join(tmpdir(), 'ck-tmpfs-'));
    expect(tryMount(mnt)).toBe(true);
    store = new CertStore(mnt);
  });
  afterEach(async () => {
    execFileSync('umount', [mnt]);
    await fs.rm(mnt, { recursive: true, force: true });
  });

  it('a full disk is a store error with the fix, the live set stays whole and no temp file is left', async () => {
    const b1 = await bundle();
    await save(b1);
    // fill what is left
    await fs.writeFile(join(mnt, 'filler'), Buffer.alloc(200 * 1024)).catch(() => {});
    const err = await save(await bundle()).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'store', code: 'CK_ERR_STORAGE_FULL' });
    expect((err as { describe(): string }).describe()).toMatch(/fix: the file system holding .* is full/);
    const live = await store.current('a');
    expect(live?.serial).toBe(certInfo(b1.leafPem).serial);
    const leftovers: string[] = [];
    const walk = async (d: string) => {
      for (const e of await fs.readdir(d, { withFileTypes: true })) {
        if (e.name.includes('.tmp-')) leftovers.push(join(d, e.name));
        if (e.isDirectory()) await walk(join(d, e.name));
      }
    };
    await walk(mnt);
    expect(leftovers).toEqual([]);
  });

  it('a read-only storage is a store error that says to mount it read-write', async () => {
    await save(await bundle());
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    const err = await save(await bundle()).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'store', code: 'CK_ERR_STORAGE_READ_ONLY' });
    expect((err as { hint: string }).hint).toMatch(/read-only file system: mount storage\.path read-write/);
  });
});

describe('CertStore: rollback to a self-signed version', () => {
  it('accepts a version whose chain is empty (a placeholder)', async () => {
    const { createSelfSigned } = await import('../crypto/selfsigned.js');
    const ph = await createSelfSigned({ commonName: 'a.example.com', altNames: ['a.example.com'], days: 7 });
    await store.save('a', {
      domains: ['a.example.com'],
      keyType: 'ecdsa-p256',
      fullchainPem: ph.certPem,
      keyPem: ph.keyPem,
    });
    await save(await bundle());
    expect((await store.rollback('a'))?.serial).toBe(certInfo(ph.certPem).serial);
  });
});
