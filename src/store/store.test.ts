import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { certInfo, keyMatchesCert } from '../crypto/pem.js';
import { createSelfSigned, createTestCA, issueLeaf } from '../crypto/selfsigned.js';
import { CertStore } from './store.js';

let root: string;
let store: CertStore;

async function bundle(names = ['a.example.com']) {
  const ca = await createTestCA({ commonName: 'store test CA' });
  const leaf = await issueLeaf(ca, { altNames: names, days: 90 });
  return {
    fullchainPem: leaf.certPem + ca.certPem,
    keyPem: leaf.keyPem,
    leafPem: leaf.certPem,
    caPem: ca.certPem,
  };
}

beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'ck-store-'));
  store = new CertStore(root);
});

describe('CertStore', () => {
  it('writes a certbot-compatible version and switches live to it, key 0600', async () => {
    const b = await bundle();
    const live = await store.save('a', {
      domains: ['a.example.com'],
      keyType: 'ecdsa-p256',
      fullchainPem: b.fullchainPem,
      keyPem: b.keyPem,
    });
    expect(live).toMatchObject({ name: 'a', version: 1, serial: certInfo(b.leafPem).serial });
    const dir = join(root, 'live', 'a');
    expect(await fs.readFile(join(dir, 'cert.pem'), 'utf8')).toBe(b.leafPem);
    expect(await fs.readFile(join(dir, 'chain.pem'), 'utf8')).toBe(b.caPem);
    expect(await fs.readFile(join(dir, 'fullchain.pem'), 'utf8')).toBe(b.fullchainPem);
    expect(keyMatchesCert(await fs.readFile(join(dir, 'privkey.pem'), 'utf8'), b.leafPem)).toBe(true);
    expect((await fs.stat(join(root, 'archive', 'a', 'privkey1.pem'))).mode & 0o777).toBe(0o600);
    expect(await fs.readlink(join(dir, 'privkey.pem'))).toBe('.current/privkey.pem');
    expect(await fs.readlink(join(dir, '.current'))).toBe('../../archive/a/.v1');
    expect(await store.readState('a')).toMatchObject({
      version: 1,
      domains: ['a.example.com'],
      placeholder: false,
    });
  });

  it('switches all four files with one rename: every reader sees one matching set, old or new', async () => {
    const b1 = await bundle();
    await store.save('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...b1 });
    const b2 = await bundle();
    const dir = join(root, 'live', 'a');
    let stop = false;
    let reads = 0;
    const reader = (async () => {
      while (!stop) {
        // open the set the way nginx does: resolve the folder once, then read the files
        const real = await fs.realpath(join(dir, '.current'));
        const [cert, key] = await Promise.all([
          fs.readFile(join(real, 'cert.pem'), 'utf8'),
          fs.readFile(join(real, 'privkey.pem'), 'utf8'),
        ]);
        expect(keyMatchesCert(key, cert)).toBe(true);
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    await store.save('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...b2 });
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect((await store.current('a'))?.serial).toBe(certInfo(b2.leafPem).serial);
  });

  it('a crash before the switch leaves the old set live and the next save skips the orphaned version', async () => {
    const b1 = await bundle();
    await store.save('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...b1 });
    // Simulate a crash after writing version 2's files but before `.current` moved.
    const b2 = await bundle();
    await fs.writeFile(join(root, 'archive', 'a', 'fullchain2.pem'), b2.fullchainPem);
    await fs.writeFile(join(root, 'archive', 'a', 'cert2.pem'), b2.leafPem.slice(0, 100)); // partial file
    expect((await store.current('a'))?.serial).toBe(certInfo(b1.leafPem).serial);
    const b3 = await bundle();
    const live = await store.save('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...b3 });
    expect(live.version).toBe(3);
    expect(live.serial).toBe(certInfo(b3.leafPem).serial);
    // no temp files are left next to live files
    expect((await fs.readdir(join(root, 'live', 'a'))).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // a rollback never lands on the incomplete version 2
    expect((await store.rollback('a'))?.serial).toBe(certInfo(b1.leafPem).serial);
  });

  it('rolls back to the previous version', async () => {
    const b1 = await bundle();
    await store.save('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...b1 });
    await store.save('a', { domains: ['a.example.com'], keyType: 'ecdsa-p256', ...(await bundle()) });
    const back = await store.rollback('a');
    expect(back?.version).toBe(1);
    expect(back?.serial).toBe(certInfo(b1.leafPem).serial);
    expect(await store.readState('a')).toMatchObject({ version: 1, serial: certInfo(b1.leafPem).serial });
  });

  it('adopts a certbot live/ folder in place and keeps serving it until the first renewal', async () => {
    const b1 = await bundle(['old.example.com']);
    // certbot's layout: live/<name>/X.pem -> ../../archive/<name>/X3.pem
    const archive = join(root, 'archive', 'old');
    const live = join(root, 'live', 'old');
    await fs.mkdir(archive, { recursive: true });
    await fs.mkdir(live, { recursive: true });
    const files = { cert: b1.leafPem, chain: b1.caPem, fullchain: b1.fullchainPem, privkey: b1.keyPem };
    for (const [f, content] of Object.entries(files)) {
      await fs.writeFile(join(archive, `${f}3.pem`), content, { mode: f === 'privkey' ? 0o600 : 0o644 });
      await fs.symlink(`../../archive/old/${f}3.pem`, join(live, `${f}.pem`));
    }
    expect(await store.listNames()).toEqual(['old']);
    const adopted = await store.current('old');
    expect(adopted).toMatchObject({
      serial: certInfo(b1.leafPem).serial,
      domains: ['old.example.com'],
      keyType: 'ecdsa-p256',
    });
    const b2 = await bundle(['old.example.com']);
    const renewed = await store.save('old', { domains: ['old.example.com'], keyType: 'ecdsa-p256', ...b2 });
    // certbot's version 3 stays; its content was captured as 4, the new certificate is 5
    expect(renewed.version).toBe(5);
    expect(await fs.readFile(join(archive, 'cert3.pem'), 'utf8')).toBe(b1.leafPem);
    expect(await fs.readFile(join(live, 'cert.pem'), 'utf8')).toBe(b2.leafPem);
    expect((await store.rollback('old'))?.serial).toBe(certInfo(b1.leafPem).serial);
  });

  it('never lets two processes hold one certificate lock', async () => {
    const release = await store.lock('a');
    await expect(store.lock('a')).rejects.toMatchObject({ code: 'CK_ERR_LOCKED', kind: 'lock' });
    await release();
    const again = await store.lock('a');
    await again();
  });

  it('reports a placeholder as such', async () => {
    const ph = await createSelfSigned({ commonName: 'p.example.com', altNames: ['p.example.com'], days: 7 });
    await store.save('p', {
      domains: ['p.example.com'],
      keyType: 'ecdsa-p256',
      fullchainPem: ph.certPem,
      keyPem: ph.keyPem,
      placeholder: true,
    });
    expect((await store.current('p'))?.placeholder).toBe(true);
  });
});
