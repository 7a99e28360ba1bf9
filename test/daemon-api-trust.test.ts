/**
 * Request handling of the daemon API that must not leak or mislead: tokens in query strings stay out of the logs,
 * wrong methods get 405, text/plain gets 415, forced renewals have a per-certificate cooldown. app.inject(), no port;
 * the ACME directory is a closed loopback port (orders fail fast, nothing leaves the machine).
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { resolveToken } from '../src/daemon/auth.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import type { Timers } from '../src/daemon/scheduler.js';

const TOKEN = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
let work: string;
const daemons: Daemon[] = [];
const timers: Timers = { setTimeout: (_fn, ms) => ({ ms }), clearTimeout: () => {} };

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-api-trust-'));
});
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop({ graceMs: 1000 });
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

async function setup(server: Record<string, unknown> = {}, now?: () => Date) {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) });
  const config = parseConfig({
    acme: { directoryUrl: 'http://127.0.0.1:9/directory' },
    storage: { path: await fs.mkdtemp(join(work, 'le-')) },
    server,
    certificates: ['a', 'b'].map((name) => ({
      name,
      domains: [`${name}.certkeeper.test`],
      challenge: { type: 'http-01', webroot: join(work, 'www') },
    })),
  });
  const daemon = createDaemon(config, {
    logger,
    token: TOKEN,
    checkAtStart: false,
    timers,
    now,
    processMetrics: false,
  });
  daemons.push(daemon);
  await daemon.start();
  return { app: daemon.app!, daemon, lines };
}

describe('daemon API request handling', () => {
  it('refuses an API token with spaces from the environment or the token file', async () => {
    await expect(
      resolveToken({}, { CERTKEEPER_TOKEN: 'correct horse battery staple' }),
    ).rejects.toMatchObject({
      kind: 'config',
      field: 'CERTKEEPER_TOKEN',
    });
    const file = join(work, 'token');
    await fs.writeFile(file, 'correct horse battery staple\n');
    await expect(resolveToken({ tokenFile: file }, {})).rejects.toMatchObject({ field: 'server.tokenFile' });
    await fs.writeFile(file, `${TOKEN}\n`);
    expect(await resolveToken({ tokenFile: file }, {})).toBe(TOKEN);
  });

  it('never logs a token sent in the query string', async () => {
    const { app, lines } = await setup();
    await app.inject({ url: `/v1/certificates?token=${TOKEN}&x=1` });
    await app.inject({ method: 'POST', url: `/v1/renew?access_token=${TOKEN}`, payload: {} });
    await app.inject({ url: `/nope?api_key=${TOKEN}` });
    const all = lines.join('\n');
    expect(all).toContain('http.request');
    expect(all).toContain('/v1/certificates?token=[redacted]&x=1');
    expect(all).not.toContain(TOKEN);
  });

  it('answers a wrong method with 405 and Allow, an unknown path with 404', async () => {
    const { app } = await setup();
    const wrong = await app.inject({ method: 'DELETE', url: '/v1/jobs/123' });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toMatch(/GET/);
    expect(wrong.json().error.code).toBe('CK_ERR_METHOD_NOT_ALLOWED');
    const get = await app.inject({ method: 'GET', url: '/v1/renew' });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect((await app.inject({ url: '/v1/nothing' })).statusCode).toBe(404);
  });

  it('refuses text/plain bodies with 415', async () => {
    const { app } = await setup();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/renew',
      headers: { ...auth, 'content-type': 'text/plain' },
      payload: '{"force":true}',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('CK_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  it('pauses forced renewals of one certificate for server.forceCooldownSeconds', async () => {
    let clock = new Date('2030-01-01T00:00:00Z');
    const { app, daemon } = await setup({ forceCooldownSeconds: 600 }, () => clock);
    const force = (names?: string[]) =>
      app.inject({ method: 'POST', url: '/v1/renew', headers: auth, payload: { force: true, names } });
    expect((await force(['a'])).statusCode).toBe(202);
    await daemon.queue.idle();
    clock = new Date('2030-01-01T00:05:00Z');
    const again = await force(['a']);
    expect(again.statusCode).toBe(429);
    expect(again.headers['retry-after']).toBe('300');
    expect(again.json().error).toMatchObject({ code: 'CK_ERR_FORCE_COOLDOWN', names: ['a'] });
    // another certificate is not held back, nor a renewal without force
    expect((await force(['b'])).statusCode).toBe(202);
    await daemon.queue.idle();
    const plain = await app.inject({
      method: 'POST',
      url: '/v1/renew',
      headers: auth,
      payload: { names: ['a'] },
    });
    expect(plain.statusCode).toBe(202);
    await daemon.queue.idle();
    clock = new Date('2030-01-01T00:10:01Z');
    expect((await force(['a'])).statusCode).toBe(202);
    await daemon.queue.idle();
  });
});
