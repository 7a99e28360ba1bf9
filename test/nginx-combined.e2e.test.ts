/**
 * live/<name>/combined.pem with a real nginx naming it in both ssl_certificate and ssl_certificate_key — the way
 * nginx reads it: two separate opens of the live path. Over many saves with blind reloads landing anywhere (the
 * classic 6-hourly loop), nginx must never serve a certificate it has no key for, and the reload after the last
 * switch must serve the newest certificate.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certInfo } from '../src/crypto/pem.js';
import { createTestCA, issueLeaf, type TestCA } from '../src/crypto/selfsigned.js';
import { CertStore } from '../src/store/store.js';
import { fetchServedCertificate, type NginxHandle, startNginx } from './harness/index.js';

const NAME = 'combo';
const DOMAIN = 'combo.certkeeper.test';
let work: string;
let store: CertStore;
let nginx: NginxHandle;
let ca: TestCA;

async function saveNew(): Promise<string> {
  const leaf = await issueLeaf(ca, { altNames: [DOMAIN], days: 30 });
  await store.save(NAME, {
    domains: [DOMAIN],
    keyType: 'ecdsa-p256',
    fullchainPem: leaf.certPem + ca.certPem,
    keyPem: leaf.keyPem,
  });
  return certInfo(leaf.certPem).serial;
}
const served = async () =>
  (
    await fetchServedCertificate({
      host: '127.0.0.1',
      port: nginx.httpsPort!,
      servername: DOMAIN,
      ca: ca.certPem,
    })
  ).serial;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-combined-'));
  ca = await createTestCA({ commonName: 'combined.pem test CA' });
  store = new CertStore(join(work, 'le'));
  await saveNew();
  const combined = join(store.liveDir(NAME), 'combined.pem');
  nginx = await startNginx({
    webroot: join(work, 'www'),
    tlsServers: [{ serverName: DOMAIN, certPath: combined, keyPath: combined }],
  });
});
afterAll(async () => {
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('combined.pem read by nginx', () => {
  it('serves a matching pair through many saves and blind reloads, and the newest after the last reload', async () => {
    const pid = Number((await fs.readFile(nginx.pidFile, 'utf8')).trim());
    const serials = new Set<string>([await served()]);
    let last = '';
    const handshakeErrors: string[] = [];
    for (let i = 0; i < 30; i++) {
      // a blind reload in flight while the store switches versions
      process.kill(pid, 'SIGHUP');
      last = await saveNew();
      serials.add(last);
      try {
        serials.add(await served());
      } catch (err) {
        handshakeErrors.push(String(err));
      }
    }
    await nginx.reload();
    expect(handshakeErrors).toEqual([]);
    expect(await served()).toBe(last);
    // nginx only ever served certificates the store wrote
    const written = new Set<string>();
    for (const v of await store.versions(NAME)) {
      written.add(certInfo(await fs.readFile(join(store.archiveDir(NAME), `cert${v}.pem`), 'utf8')).serial);
    }
    for (const s of serials) expect(written.has(s)).toBe(true);
  });
});
