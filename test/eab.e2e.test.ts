import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { renew } from '../src/renew.js';
import {
  type NginxHandle,
  type PebbleHandle,
  startNginx,
  startPebble,
  verifyChain,
} from './harness/index.js';

// A CA that requires External Account Binding (ZeroSSL, Google Trust Services, Sectigo work this way).
const KID = 'kid-1';
const HMAC = 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W';

let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-eab-'));
  await fs.mkdir(join(work, 'www'));
  nginx = await startNginx({ webroot: join(work, 'www') });
  pebble = await startPebble({ httpPort: nginx.httpPort, eabKeys: { [KID]: HMAC } });
});
afterAll(async () => {
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

const cfg = (storage: string, eab?: { kid: string; hmacKey: string }) =>
  parseConfig({
    acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath, ...(eab ? { eab } : {}) },
    storage: { path: join(work, storage) },
    selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer] },
    certificates: [
      {
        name: 'eab',
        domains: ['eab.certkeeper.test'],
        challenge: { type: 'http-01', webroot: join(work, 'www') },
      },
    ],
  });

describe('External Account Binding', () => {
  it('without EAB the error says to configure acme.eab', async () => {
    const report = await renew(cfg('none'));
    expect(report.results[0]?.status).toBe('failed');
    expect(report.results[0]?.error).toMatchObject({ code: 'CK_ERR_ACME_EXTERNAL_ACCOUNT_REQUIRED' });
    expect(String(report.results[0]?.error?.hint)).toMatch(/acme\.eab\.kid/);
  });

  it('a wrong EAB HMAC key says to check the EAB key, not the challenge', async () => {
    const wrong = Buffer.from('not the key the CA gave out, not at all').toString('base64url');
    const report = await renew(cfg('wrong', { kid: KID, hmacKey: wrong }));
    expect(report.results[0]?.status).toBe('failed');
    expect(report.results[0]?.error).toMatchObject({ code: 'CK_ERR_ACME_EAB' });
    expect(String(report.results[0]?.error?.hint)).toMatch(/acme\.eab\.kid and acme\.eab\.hmacKey/);
    expect(String(report.results[0]?.error?.hint)).not.toMatch(/challenge/);
  });

  it('with EAB the account registers and the certificate is issued', async () => {
    const report = await renew(cfg('with', { kid: KID, hmacKey: HMAC }));
    expect(report.results[0]?.error).toBeUndefined();
    const fullchain = await fs.readFile(join(work, 'with', 'live', 'eab', 'fullchain.pem'), 'utf8');
    expect(verifyChain(fullchain, await pebble.rootPem())).toBe(true);
  });
});
