import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AcmeRequestEvent, acmeEvents } from '../src/acme/http.js';
import { parseConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { certInfo, keyMatchesCert } from '../src/crypto/pem.js';
import { renew } from '../src/renew.js';
import { CertStore } from '../src/store/store.js';
import {
  type NginxHandle,
  type PebbleHandle,
  startNginx,
  startPebble,
  verifyChain,
} from './harness/index.js';

let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;
let webroot: string;

function config(
  extra: Partial<ConfigInput> & { certificates: ConfigInput['certificates'] },
  storage = join(work, 'le'),
) {
  return parseConfig({
    acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath, email: 'ops@certkeeper.test' },
    storage: { path: storage },
    selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
    ...extra,
  });
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-e2e-'));
  webroot = join(work, 'www');
  await fs.mkdir(webroot);
  // nginx workers run as nobody: the challenge files must be world-readable, as for a real nginx
  await fs.chmod(work, 0o755);
  nginx = await startNginx({ webroot, workerUser: 'nobody nogroup' });
  pebble = await startPebble({ httpPort: nginx.httpPort });
});

afterAll(async () => {
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('HTTP-01 webroot against Pebble', () => {
  const site = {
    name: 'site',
    domains: ['site.certkeeper.test', 'www.site.certkeeper.test'],
    challenge: { type: 'http-01' as const, webroot: '' },
  };

  it('issues a two-name certificate whose chain verifies against the Pebble root', async () => {
    const cfg = config({ certificates: [{ ...site, challenge: { type: 'http-01', webroot } }] });
    const report = await renew(cfg);
    expect(report.results[0]?.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.results[0]).toMatchObject({ name: 'site', status: 'issued', version: 1 });

    const live = join(cfg.storage.path, 'live', 'site');
    const [cert, chain, fullchain, privkey] = await Promise.all(
      ['cert', 'chain', 'fullchain', 'privkey'].map((f) => fs.readFile(join(live, `${f}.pem`), 'utf8')),
    );
    expect(verifyChain(fullchain!, await pebble.rootPem())).toBe(true);
    expect(fullchain).toBe(cert! + chain!);
    expect(keyMatchesCert(privkey!, cert!)).toBe(true);
    expect(certInfo(cert!).subjectAltNames.sort()).toEqual([
      'site.certkeeper.test',
      'www.site.certkeeper.test',
    ]);
    expect(report.results[0]?.serial).toBe(certInfo(cert!).serial);
    // modes: the key only for its owner, the rest readable by nginx workers
    expect((await fs.stat(join(live, 'privkey.pem'))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(join(live, 'fullchain.pem'))).mode & 0o777).toBe(0o644);
    const accountKey = (await fs.readdir(join(cfg.storage.path, 'accounts'), { recursive: true })).find((f) =>
      String(f).endsWith('account.key'),
    );
    expect((await fs.stat(join(cfg.storage.path, 'accounts', String(accountKey)))).mode & 0o777).toBe(0o600);
    // certbot-compatible archive, state beside it, and no challenge file left behind
    expect(
      (await fs.readdir(join(cfg.storage.path, 'archive', 'site'))).filter((f) => !f.startsWith('.')).sort(),
    ).toEqual([
      // version 0: the first-boot placeholder written before the order; version 1: the certificate
      'cert0.pem',
      'cert1.pem',
      'chain0.pem',
      'chain1.pem',
      'combined0.pem',
      'combined1.pem',
      'fullchain0.pem',
      'fullchain1.pem',
      'privkey0.pem',
      'privkey1.pem',
    ]);
    const state = JSON.parse(await fs.readFile(join(cfg.storage.path, 'state', 'site.json'), 'utf8'));
    expect(state).toMatchObject({
      name: 'site',
      version: 1,
      serial: certInfo(cert!).serial,
      keyType: 'ecdsa-p256',
      lastAttempt: { result: 'success' },
    });
    expect(await fs.readdir(join(webroot, '.well-known', 'acme-challenge'))).toEqual([]);
  });

  it('does not renew a fresh certificate, and a forced renewal creates version 2 with live pointing at it', async () => {
    const cfg = config({ certificates: [{ ...site, challenge: { type: 'http-01', webroot } }] });
    const store = new CertStore(cfg.storage.path);
    const before = await store.current('site');
    const idle = await renew(cfg);
    expect(idle.results[0]).toMatchObject({ status: 'skipped' });

    const forced = await renew(cfg, { force: true });
    expect(forced.results[0]).toMatchObject({ status: 'renewed', version: 2 });
    const after = await store.current('site');
    expect(after?.serial).not.toBe(before?.serial);
    expect(after?.version).toBe(2);
    expect(await fs.readlink(join(cfg.storage.path, 'live', 'site', '.current'))).toMatch(/\.v2$/);
    const served = await fs.readFile(join(cfg.storage.path, 'live', 'site', 'cert.pem'), 'utf8');
    expect(certInfo(served).serial).toBe(forced.results[0]?.serial);
    expect(keyMatchesCert(after!.keyPem, served)).toBe(true);
    // version 1 stays in the archive
    expect(await fs.readFile(join(cfg.storage.path, 'archive', 'site', 'cert1.pem'), 'utf8')).toBe(
      before?.certPem,
    );
  });

  it('fails at the self-check when the webroot is not served, without answering a challenge or finalising', async () => {
    const unserved = join(work, 'moved-to-s3');
    const cfg = config({
      certificates: [
        {
          name: 'moved',
          domains: ['moved.certkeeper.test'],
          challenge: { type: 'http-01', webroot: unserved },
        },
      ],
    });
    const seen: AcmeRequestEvent[] = [];
    const listener = (e: AcmeRequestEvent) => seen.push(e);
    acmeEvents.on('request', listener);
    try {
      const report = await renew(cfg);
      expect(report.ok).toBe(false);
      const r = report.results[0]!;
      expect(r.status).toBe('failed');
      expect(r.error).toMatchObject({
        code: 'CK_ERR_SELF_CHECK',
        domain: 'moved.certkeeper.test',
        cert: 'moved',
      });
      expect(r.reason).toMatch(/answered HTTP 404.*not served/);
      expect(String(r.error?.hint)).toMatch(/S3/);
    } finally {
      acmeEvents.off('request', listener);
    }
    const endpoints = seen.map((e) => e.endpoint);
    expect(endpoints).toContain('newOrder');
    expect(endpoints).not.toContain('finalize');
    // the only POST to a challenge URL would be the answer; there must be none
    expect(seen.filter((e) => e.endpoint === 'challenge')).toEqual([]);
    // only the first-boot placeholder is live, never a certificate from this failed order
    expect((await new CertStore(cfg.storage.path).current('moved'))?.placeholder).toBe(true);
    expect(await fs.readdir(join(unserved, '.well-known', 'acme-challenge'))).toEqual([]);
    const state = await new CertStore(cfg.storage.path).readState('moved');
    expect(state).toMatchObject({
      failures: 1,
      lastAttempt: { result: 'failure', code: 'CK_ERR_SELF_CHECK' },
    });
  });

  it('names unknown certificates instead of doing nothing', async () => {
    const cfg = config({ certificates: [{ ...site, challenge: { type: 'http-01', webroot } }] });
    await expect(renew(cfg, { names: ['nope'] })).rejects.toThrow(/unknown certificate name: nope/);
  });
});

describe('a CA that rejects half of the nonces', () => {
  let flaky: PebbleHandle;
  beforeAll(async () => {
    flaky = await startPebble({ httpPort: nginx.httpPort, nonceReject: 50 });
  });
  afterAll(async () => flaky?.stop());

  it('still issues (badNonce is retried)', async () => {
    const cfg = parseConfig({
      acme: { directoryUrl: flaky.directoryUrl, caBundle: flaky.caBundlePath },
      storage: { path: join(work, 'flaky') },
      selfCheck: { httpPort: nginx.httpPort, resolvers: [flaky.dnsServer] },
      certificates: Array.from({ length: 3 }, (_, i) => ({
        name: `n${i}`,
        domains: [`n${i}.certkeeper.test`],
        challenge: { type: 'http-01', webroot },
      })),
    });
    const report = await renew(cfg);
    expect(report.results.map((r) => r.error?.message)).toEqual([undefined, undefined, undefined]);
    expect(report.results.map((r) => r.status)).toEqual(['issued', 'issued', 'issued']);
    for (const r of report.results) {
      const fullchain = await fs.readFile(join(cfg.storage.path, 'live', r.name, 'fullchain.pem'), 'utf8');
      expect(verifyChain(fullchain, await flaky.rootPem())).toBe(true);
    }
  });
});
