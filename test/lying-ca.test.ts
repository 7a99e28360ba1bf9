/**
 * certkeeper against a CA that lies (test/fakes/lying-acme-server.ts, HTTPS on 127.0.0.1): tokens that are paths,
 * identifiers nobody ordered, certificates that are not the ordered one, a CA that forgets the account. Each case
 * must fail before anything reaches a file, a hook or the store — and the honest case must still issue.
 */
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { createDaemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { renew } from '../src/renew.js';
import { CertStore } from '../src/store/store.js';
import { type LyingAcmeServer, startLyingAcmeServer } from './fakes/lying-acme-server.js';

const HOOK = resolve(import.meta.dirname, 'fixtures/exec-dns-hook.sh');
let liar: LyingAcmeServer;
let work: string;
let n = 0;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-liar-test-'));
  liar = await startLyingAcmeServer();
});
afterAll(async () => {
  await liar?.stop();
  await fs.rm(work, { recursive: true, force: true });
});
beforeEach(() => {
  liar.options.token = undefined;
  liar.options.injectIdentifiers = undefined;
  liar.options.issue = undefined;
});

/** A fresh storage and webroot per case; the victim file sits next to the webroot, where "../" tokens aim. */
async function fixture(challenge: 'http-01' | 'exec', hookMode = 'ok') {
  const dir = join(work, `case-${++n}`);
  const webroot = join(dir, 'www');
  await fs.mkdir(webroot, { recursive: true });
  const victim = join(dir, 'victim');
  await fs.writeFile(victim, 'precious\n');
  const hookLog = join(dir, 'hook.log');
  const config = parseConfig({
    acme: { directoryUrl: liar.directoryUrl, caBundle: liar.caBundlePath },
    storage: { path: join(dir, 'le') },
    selfCheck: { enabled: false },
    certificates: [
      {
        name: 'site',
        domains: ['site.certkeeper.test', 'www.site.certkeeper.test'],
        challenge:
          challenge === 'http-01'
            ? { type: 'http-01', webroot }
            : { type: 'dns-01', provider: 'exec', command: [HOOK, hookLog, hookMode] },
      },
    ],
  });
  return { dir, webroot, victim, hookLog, config, store: new CertStore(join(dir, 'le')) };
}

describe('a lying CA', () => {
  it('the honest answer is issued and stored (the fake works)', async () => {
    const f = await fixture('http-01');
    const report = await renew(f.config);
    expect(report.results[0]?.error).toBeUndefined();
    expect(report.results[0]?.status).toBe('issued');
    expect((await f.store.current('site'))?.domains).toEqual([
      'site.certkeeper.test',
      'www.site.certkeeper.test',
    ]);
  });

  it.each([
    ['a token that climbs out of the webroot', '../../../victim'],
    ['a token with a slash', 'AAAAAAAAAAAAAAAAAAAAAAAA/victim'],
    ['an absolute path', '/etc/passwd-AAAAAAAAAAAAAAAAAAAAAAAA'],
    ['a token far too long', 'A'.repeat(4096)],
  ])('%s is refused before any path is built', async (_what, token) => {
    const f = await fixture('http-01');
    liar.options.token = () => token;
    const deactivatedBefore = liar.deactivations;
    const report = await renew(f.config);
    expect(liar.deactivations - deactivatedBefore).toBe(2);
    expect(report.results[0]?.status).toBe('failed');
    expect(report.results[0]?.error).toMatchObject({ code: 'CK_ERR_ACME_BAD_TOKEN' });
    expect(await fs.readFile(f.victim, 'utf8')).toBe('precious\n');
    expect(existsSync(join(f.webroot, '.well-known'))).toBe(false);
    // nothing from the CA went live: at most the first-boot placeholder
    expect((await f.store.current('site'))?.placeholder ?? true).toBe(true);
  });

  it('an identifier nobody ordered never reaches the exec hook', async () => {
    const f = await fixture('exec');
    const pwned = join(f.dir, 'pwned');
    liar.options.injectIdentifiers = [`$(touch ${pwned});a.certkeeper.test`, 'evil.example.org'];
    const deactivatedBefore = liar.deactivations;
    const report = await renew(f.config);
    // no authorization of the refused order is left pending (2 configured + 2 injected)
    expect(liar.deactivations - deactivatedBefore).toBe(4);
    expect(report.results[0]?.status).toBe('failed');
    expect(report.results[0]?.error).toMatchObject({ code: 'CK_ERR_ACME_FOREIGN_IDENTIFIER' });
    expect(report.results[0]?.error?.message).toMatch(/not one of the configured names/);
    // the hook was not called at all, not even for the configured names
    expect(existsSync(f.hookLog)).toBe(false);
    expect(existsSync(pwned)).toBe(false);
  });

  it('an identifier nobody ordered never reaches the webroot either', async () => {
    const f = await fixture('http-01');
    liar.options.injectIdentifiers = ['other.certkeeper.test'];
    const report = await renew(f.config);
    expect(report.results[0]?.error).toMatchObject({ code: 'CK_ERR_ACME_FOREIGN_IDENTIFIER' });
    expect(existsSync(join(f.webroot, '.well-known'))).toBe(false);
  });

  it.each([
    ['foreign-names', /its names are someone-else\.example\.org/],
    ['foreign-key', /public key is not the key made for this order/],
    ['broken-chain', /is not signed by certificate 2/],
    ['expired', /expired/],
  ] as const)('a %s certificate is not stored', async (mode, why) => {
    const f = await fixture('http-01');
    liar.options.issue = mode;
    const report = await renew(f.config);
    expect(report.results[0]?.status).toBe('failed');
    expect(report.results[0]?.error).toMatchObject({ code: 'CK_ERR_ACME_BAD_CERTIFICATE' });
    expect(report.results[0]?.error?.message).toMatch(why);
    // nothing from the CA went live: at most the first-boot placeholder
    expect((await f.store.current('site'))?.placeholder ?? true).toBe(true);
    expect((await f.store.readState('site'))?.serial).toBe((await f.store.current('site'))?.serial);
  });

  it('hook output with secrets stays out of the result and the state file', async () => {
    const f = await fixture('exec', 'leak');
    const report = await renew(f.config);
    expect(report.results[0]?.status).toBe('failed');
    expect(report.results[0]?.error).toMatchObject({ code: 'CK_ERR_EXEC_HOOK' });
    expect(JSON.stringify(report)).not.toMatch(/SECRET/);
    const state = await fs.readFile(join(f.dir, 'le', 'state', 'site.json'), 'utf8');
    expect(state).toContain('CK_ERR_EXEC_HOOK');
    expect(state).not.toMatch(/SECRET/);
  });

  it('a CA that forgot the account, found while updating the contact: registers again too', async () => {
    const f = await fixture('http-01');
    expect((await renew(f.config)).results[0]?.status).toBe('issued');
    const before = liar.accountsCreated;
    liar.forgetAccounts();
    const report = await renew(
      { ...f.config, acme: { ...f.config.acme, email: 'new@certkeeper.test' } },
      { force: true },
    );
    expect(report.results[0]?.error).toBeUndefined();
    expect(report.results[0]?.status).toBe('renewed');
    expect(liar.accountsCreated).toBe(before + 1);
  });

  it('hook output with secrets stays out of GET /v1/jobs/:id and GET /v1/certificates', async () => {
    const f = await fixture('exec', 'leak');
    const daemon = createDaemon(f.config, {
      logger: silentLogger,
      token: 'test-token-0123456789abcdef',
      checkAtStart: false,
      timers: { setTimeout: (_fn, ms) => ({ ms }), clearTimeout: () => {} },
      processMetrics: false,
    });
    await daemon.start();
    try {
      const app = daemon.app!;
      const res = await app.inject({
        method: 'POST',
        url: '/v1/renew',
        headers: { authorization: 'Bearer test-token-0123456789abcdef' },
        payload: {},
      });
      const { jobId } = res.json() as { jobId: string };
      await daemon.queue.idle();
      const job = await app.inject({ url: `/v1/jobs/${jobId}` });
      expect(job.json().results[0].error.code).toBe('CK_ERR_EXEC_HOOK');
      expect(job.body).not.toMatch(/SECRET/);
      const certs = await app.inject({ url: '/v1/certificates' });
      expect(certs.json().certificates[0].lastError.code).toBe('CK_ERR_EXEC_HOOK');
      expect(certs.body).not.toMatch(/SECRET/);
    } finally {
      await daemon.stop({ graceMs: 1000 });
    }
  });

  it('a CA that forgot the account: a new one is registered, the old key kept aside, the order retried once', async () => {
    const f = await fixture('http-01');
    expect((await renew(f.config)).results[0]?.status).toBe('issued');
    const before = liar.accountsCreated;
    liar.forgetAccounts();
    const report = await renew(f.config, { force: true });
    expect(report.results[0]?.error).toBeUndefined();
    expect(report.results[0]?.status).toBe('renewed');
    expect(liar.accountsCreated).toBe(before + 1);
    const accounts = join(f.dir, 'le', 'accounts');
    const [host] = await fs.readdir(accounts);
    const files = await fs.readdir(join(accounts, host!, 'certkeeper'));
    expect(files.filter((x) => x.startsWith('account.key.lost-'))).toHaveLength(1);
    expect(files).toContain('account.key');
  });
});
