/**
 * The daemon without a real CA: the ACME directory is a local server refusing everyone, so every order fails fast — which is
 * what backoff and alert tests need. API routes go through app.inject() (no port), alerts to a real local receiver.
 */
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import { assertListenAllowed, checkBearer, parseListen, resolveToken } from '../src/daemon/auth.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import type { Timers } from '../src/daemon/scheduler.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';

const TOKEN = 'test-token-0123456789abcdef';
const DAY = 86_400_000;
let work: string;
let refusingCa: Server;
let caUrl: string;
let receiver: Server;
let received: { path: string; body: Record<string, unknown> }[] = [];
let receiverUrl: string;
let receiverStatus = 200;
const daemons: Daemon[] = [];

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-daemon-'));
  // A CA that refuses everyone with a problem document: orders fail at once (a closed port makes acme-client retry).
  refusingCa = createServer((_req, res) => {
    res.writeHead(403, { 'content-type': 'application/problem+json' });
    res.end(
      JSON.stringify({
        type: 'urn:ietf:params:acme:error:unauthorized',
        detail: 'this test CA refuses everyone',
      }),
    );
  });
  await new Promise<void>((r) => refusingCa.listen(0, '127.0.0.1', r));
  caUrl = `http://127.0.0.1:${(refusingCa.address() as AddressInfo).port}/dir`;
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (receiverStatus === 200) {
        received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString()) });
      }
      res.writeHead(receiverStatus).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop({ graceMs: 1000 });
  received = [];
  receiverStatus = 200;
});

afterAll(async () => {
  receiver?.closeAllConnections();
  refusingCa?.closeAllConnections();
  await new Promise((r) => refusingCa?.close(r));
  await new Promise((r) => receiver?.close(r));
  await fs.rm(work, { recursive: true, force: true });
});

const fakeTimers = () => {
  const calls: { ms: number }[] = [];
  const timers: Timers = {
    setTimeout: (_fn, ms) => {
      const h = { ms };
      calls.push(h);
      return h;
    },
    clearTimeout: () => {},
  };
  return { timers, calls };
};

async function setup(
  names: { name: string; seedDays?: number }[],
  extra: Partial<ConfigInput> = {},
  opts: { now?: () => Date; timers?: Timers } = {},
) {
  const storage = await fs.mkdtemp(join(work, 'le-'));
  const store = new CertStore(storage);
  for (const n of names) {
    if (n.seedDays === undefined) continue;
    const { certPem, keyPem } = await createSelfSigned({
      commonName: `${n.name}.certkeeper.test`,
      altNames: [`${n.name}.certkeeper.test`],
      days: n.seedDays,
    });
    await store.save(n.name, {
      domains: [`${n.name}.certkeeper.test`],
      keyType: 'ecdsa-p256',
      fullchainPem: certPem,
      keyPem,
    });
  }
  const config = parseConfig({
    acme: { directoryUrl: caUrl },
    storage: { path: storage },
    schedule: { cron: '0 3 * * *', jitterSeconds: 0 },
    notify: [
      { type: 'webhook', url: `${receiverUrl}/hook`, events: ['failure', 'expiring', 'success'] },
      { type: 'slack', url: `${receiverUrl}/slack`, events: ['expiring'] },
    ],
    certificates: names.map((n) => ({
      name: n.name,
      domains: [`${n.name}.certkeeper.test`],
      challenge: { type: 'http-01', webroot: join(work, 'www') },
    })),
    ...extra,
  });
  const daemon = createDaemon(config, {
    logger: silentLogger,
    token: TOKEN,
    checkAtStart: false,
    now: opts.now,
    timers: opts.timers ?? fakeTimers().timers,
    notifyRetryDelaysMs: [0, 0],
    notifySleep: async () => {},
    processMetrics: false,
  });
  daemons.push(daemon);
  await daemon.start();
  return { daemon, store, config, app: daemon.app! };
}

describe('API authentication and validation', () => {
  it('rejects missing and wrong tokens with 401 and changes nothing', async () => {
    const { daemon, store, app } = await setup([{ name: 'a', seedDays: 90 }]);
    const before = await fs.readFile(store.statePath('a'), 'utf8');
    const none = await app.inject({ method: 'POST', url: '/v1/renew', payload: { force: true } });
    expect(none.statusCode).toBe(401);
    expect(none.json().error).toMatchObject({ code: 'CK_ERR_UNAUTHORIZED' });
    expect(none.json().error.hint).toMatch(/Authorization: Bearer/);
    for (const header of [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      TOKEN,
      'Basic abc',
      'Bearer ',
    ]) {
      const wrong = await app.inject({
        method: 'POST',
        url: '/v1/renew',
        headers: { authorization: header },
        payload: { force: true },
      });
      expect(wrong.statusCode, header).toBe(401);
    }
    expect(daemon.queue.list()).toEqual([]);
    expect(await fs.readFile(store.statePath('a'), 'utf8')).toBe(before);
    const ok = await app.inject({
      method: 'POST',
      url: '/v1/renew',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toMatchObject({ jobId: expect.any(String), names: ['a'] });
    expect(ok.headers.location).toBe(`/v1/jobs/${ok.json().jobId}`);
  });

  it('validates bodies: 400 with the reason, 404 naming unknown certificates, 413 when too large, 415 for form data', async () => {
    const { app } = await setup([{ name: 'a', seedDays: 90 }], { server: { bodyLimitBytes: 1024 } });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/renew',
      headers: auth,
      payload: { names: 'a', extra: 1 },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('CK_ERR_BAD_REQUEST');
    expect(bad.json().error.message).toMatch(/names/);
    const badJson = await app.inject({
      method: 'POST',
      url: '/v1/renew',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"force": tru',
    });
    expect(badJson.statusCode).toBe(400);
    const unknown = await app.inject({
      method: 'POST',
      url: '/v1/renew',
      headers: auth,
      payload: { names: ['a', 'nope', 'ghost'] },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error).toMatchObject({
      code: 'CK_ERR_UNKNOWN_CERTIFICATE',
      names: ['nope', 'ghost'],
    });
    expect(unknown.json().error.message).toContain('nope, ghost');
    const big = await app.inject({
      method: 'POST',
      url: '/v1/renew',
      headers: auth,
      payload: { names: Array.from({ length: 200 }, (_, i) => `name-${i}`) },
    });
    expect(big.statusCode).toBe(413);
    const form = await app.inject({
      method: 'POST',
      url: '/v1/renew',
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'force=true',
    });
    expect(form.statusCode).toBe(415);
    const job = await app.inject({ method: 'GET', url: '/v1/jobs/nope' });
    expect(job.statusCode).toBe(404);
    expect(job.json().error.code).toBe('CK_ERR_JOB_NOT_FOUND');
  });

  it('token: config, then env, then file; compared in constant time; non-loopback needs one', async () => {
    const file = join(work, 'token');
    await fs.writeFile(file, `${TOKEN}-file\n`);
    const server = { listen: '127.0.0.1:8080', bodyLimitBytes: 1024 };
    expect(await resolveToken({ ...server, token: TOKEN }, { CERTKEEPER_TOKEN: 'x'.repeat(20) })).toBe(TOKEN);
    expect(await resolveToken(server, { CERTKEEPER_TOKEN: 'y'.repeat(20) })).toBe('y'.repeat(20));
    expect(await resolveToken({ ...server, tokenFile: file }, {})).toBe(`${TOKEN}-file`);
    await expect(resolveToken({ ...server, tokenFile: join(work, 'missing') }, {})).rejects.toThrow(
      /tokenFile/,
    );
    await expect(resolveToken(server, { CERTKEEPER_TOKEN: 'short' })).rejects.toThrow(/16 characters/);
    expect(checkBearer(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(checkBearer(`bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(checkBearer(undefined, TOKEN)).toBe(false);
    expect(parseListen('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseListen(':8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(() => assertListenAllowed(parseListen('0.0.0.0:8080'), undefined)).toThrow(/without an API token/);
    expect(() => assertListenAllowed(parseListen('0.0.0.0:8080'), TOKEN)).not.toThrow();
    expect(() => assertListenAllowed(parseListen('127.0.0.1:8080'), undefined)).not.toThrow();
    expect(() => parseListen('8080')).toThrow(/host:port/);
  });
});

describe('scheduling, backoff and alerts (clock injected)', () => {
  it('looks again within 12 hours whatever schedule.cron says (ARI twice a day)', async () => {
    const t = fakeTimers();
    const { daemon } = await setup(
      [{ name: 'fresh', seedDays: 90 }],
      { schedule: { cron: '0 3 1 1 *', jitterSeconds: 0 } },
      { timers: t.timers },
    );
    await daemon.tick('startup');
    await daemon.queue.idle();
    const last = t.calls.at(-1)?.ms;
    expect(last).toBeDefined();
    expect(last!).toBeLessThanOrEqual(12 * 3600_000);
  });

  it('backs off after a failure: nothing before nextAttemptAfter, a retry after it, the delay front-loaded (1 min, then 10 min)', async () => {
    let clock = new Date('2030-01-01T00:00:00Z');
    const t = fakeTimers();
    const { daemon, store } = await setup([{ name: 'b' }], {}, { now: () => clock, timers: t.timers });
    await daemon.tick();
    await daemon.queue.idle();
    const s1 = await store.readState('b');
    expect(s1).toMatchObject({ failures: 1, lastAttempt: { result: 'failure' } });
    expect(s1?.nextAttemptAfter).toBe('2030-01-01T00:01:00.000Z');
    expect(daemon.queue.list()).toHaveLength(1);
    // the wake timer is armed for the end of the backoff
    expect(t.calls.at(-1)?.ms).toBe(60_000);

    clock = new Date('2030-01-01T00:00:30Z');
    await daemon.tick();
    await daemon.queue.idle();
    expect(daemon.queue.list()).toHaveLength(1);
    expect((await store.readState('b'))?.failures).toBe(1);
    const rows = (await daemon.app!.inject({ url: '/v1/certificates' })).json().certificates;
    expect(rows[0]).toMatchObject({
      name: 'b',
      // every certificate with nothing live gets the bootstrap placeholder before its first order
      validity: 'placeholder',
      plan: { due: false, reason: 'backoff' },
      nextRenewal: '2030-01-01T00:01:00.000Z',
      lastError: { code: expect.stringMatching(/^CK_ERR_/) },
    });

    clock = new Date('2030-01-01T00:01:01Z');
    await daemon.tick();
    await daemon.queue.idle();
    expect(daemon.queue.list()).toHaveLength(2);
    const s2 = await store.readState('b');
    expect(s2?.failures).toBe(2);
    expect(s2?.nextAttemptAfter).toBe('2030-01-01T00:11:01.000Z');
    // an API trigger without force respects the backoff too; with force it goes ahead
    const auth = { authorization: `Bearer ${TOKEN}` };
    await daemon.app!.inject({ method: 'POST', url: '/v1/renew', headers: auth, payload: {} });
    await daemon.queue.idle();
    expect((await store.readState('b'))?.failures).toBe(2);
    await daemon.app!.inject({ method: 'POST', url: '/v1/renew', headers: auth, payload: { force: true } });
    await daemon.queue.idle();
    expect((await store.readState('b'))?.failures).toBe(3);

    await daemon.alerts.flush();
    const failures = received.filter((r) => r.path === '/hook' && r.body.event === 'failure');
    // the same failure three times in a few minutes: told once (the daily repeat rule, remembered in the state)
    expect(failures.length).toBe(1);
    expect((await store.readState('b'))?.alerts?.failure).toMatchObject({ what: failures[0]?.body.code });
    expect(failures[0]?.body).toMatchObject({
      version: 1,
      source: 'certkeeper',
      event: 'failure',
      certificate: 'b',
      domains: ['b.certkeeper.test'],
      code: expect.stringMatching(/^CK_ERR_/),
      jobId: expect.any(String),
    });
    expect(String(failures[0]?.body.message)).toMatch(/renewal failed/);
  });

  it("sends 'expiring and the last attempt failed' once a day until fixed, to webhook and Slack", async () => {
    const seedNow = Date.now();
    let clock = new Date(seedNow + 85 * DAY); // 90-day certificate: 5 days left
    const { daemon, store } = await setup([{ name: 'a', seedDays: 90 }], {}, { now: () => clock });
    await store.updateState('a', {
      lastAttempt: { at: clock.toISOString(), result: 'failure', message: 'DNS timed out' },
    });
    await daemon.tick();
    await daemon.queue.idle();
    await daemon.alerts.flush();
    const expiring = () =>
      received.filter((r) => r.body.event === 'expiring' || String(r.body.text).includes(':warning:'));
    expect(
      expiring()
        .map((r) => r.path)
        .sort(),
    ).toEqual(['/hook', '/slack']);
    const hook = expiring().find((r) => r.path === '/hook')!.body;
    expect(hook).toMatchObject({ event: 'expiring', certificate: 'a', daysLeft: expect.any(Number) });
    expect(hook.daysLeft as number).toBeLessThanOrEqual(5);
    const slack = expiring().find((r) => r.path === '/slack')!.body;
    expect(slack.text).toMatch(/a — expires in \d days and the last renewal attempt failed/);
    expect(Array.isArray(slack.blocks)).toBe(true);

    clock = new Date(clock.getTime() + 3600_000);
    await daemon.tick();
    await daemon.queue.idle();
    await daemon.alerts.flush();
    expect(expiring()).toHaveLength(2);

    clock = new Date(clock.getTime() + DAY);
    await daemon.tick();
    await daemon.queue.idle();
    await daemon.alerts.flush();
    expect(expiring()).toHaveLength(4);
  });

  it('an unreachable alert target is retried, logged and never breaks the daemon', async () => {
    receiverStatus = 500;
    const { daemon } = await setup([{ name: 'b' }]);
    await daemon.tick();
    await daemon.queue.idle();
    await daemon.alerts.flush();
    expect(daemon.alerts.failed).toBe(1);
    expect(daemon.alerts.delivered).toBe(0);
    const health = await daemon.app!.inject({ url: '/healthz' });
    expect(health.statusCode).toBe(200);
  });
});

describe('readiness and metrics', () => {
  it('readyz flips to 503 when a certificate enters the danger window', async () => {
    const seeded = Date.now();
    let clock = new Date(seeded + 70 * DAY); // ~20 days left of 90
    const { app } = await setup(
      [{ name: 'a', seedDays: 90 }],
      { renewal: { dangerDays: 14 } },
      { now: () => clock },
    );
    const ok = await app.inject({ url: '/readyz' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ ready: true, problems: [] });
    const [a] = ok.json().certificates;
    expect(a).toMatchObject({ name: 'a', ready: true, health: 'expiring' }); // past 1/3 left, before danger
    expect(a.lifetimeSeconds).toBeGreaterThan(89 * 86_400);
    expect(Date.parse(a.renewAt)).toBeGreaterThan(seeded + 50 * DAY);
    expect(Date.parse(a.notAfter)).toBeGreaterThan(Date.parse(a.renewAt));
    clock = new Date(seeded + 77 * DAY); // ~13 days left
    const notOk = await app.inject({ url: '/readyz' });
    expect(notOk.statusCode).toBe(503);
    expect(notOk.json().problems).toEqual([
      { name: 'a', problem: expect.stringMatching(/expires in 1[23] days/) },
    ]);
    clock = new Date(seeded + 91 * DAY);
    expect((await app.inject({ url: '/readyz' })).json().problems[0].problem).toMatch(/expired/);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('/metrics is Prometheus text with the certificate gauges and counters', async () => {
    const { daemon, app } = await setup([{ name: 'a', seedDays: 90 }, { name: 'b' }]);
    await daemon.tick(); // b is missing → the CA refuses it
    await daemon.queue.idle();
    const res = await app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheus(res.body);
    const a = daemon.cache.get('a')!.live!;
    expect(samples.get('certkeeper_certificate_expiration_timestamp_seconds{name="a"}')).toBe(
      a.notAfter.getTime() / 1000,
    );
    expect(samples.has('certkeeper_certificate_renewal_timestamp_seconds{name="a"}')).toBe(true);
    expect(samples.get('certkeeper_renewals_total{name="b",result="failure"}')).toBe(1);
    expect(
      [...samples.keys()].some((k) =>
        k.startsWith('certkeeper_acme_requests_total{endpoint="directory",status="403"}'),
      ),
    ).toBe(true);
  });
});

/** Strict enough parser of the text exposition format: every line is a comment or `name{labels} value`. */
function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3]);
        typed.add(meta[2]!);
      }
      continue;
    }
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)( -?\d+)?$/.exec(
        line,
      );
    expect(m, `not a Prometheus sample line: ${line}`).not.toBeNull();
    const base = m![1]!.replace(/_(bucket|sum|count|total)$/, '');
    expect(typed.has(m![1]!) || typed.has(base), `sample without # TYPE: ${line}`).toBe(true);
    out.set(`${m![1]}${(m![2] ?? '').replace(/,\}$/, '}')}`, Number(m![3]));
  }
  return out;
}
