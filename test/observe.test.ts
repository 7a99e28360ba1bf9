/**
 * What operators see: metrics that migrate from cert-manager (checked with promtool and scraped by a real
 * Prometheus), the shipped alert rules (promtool check/test rules) and Grafana dashboard (every panel queries an
 * exported metric), the read-only listener, /readyz logging, and the status page's access rules and escaping.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Daemon } from '../src/daemon/daemon.js';
import { type FakeAcm, startFakeAcm } from './fakes/acm-server.js';
import { type ObserveWorld, samples, startDaemon, startWorld, TOKEN } from './fixtures/observe-daemon.js';
import { freePort, pollUntil, requireBinaries, spawnManaged } from './harness/index.js';

const REPO = join(import.meta.dirname, '..');
const RULES = join(REPO, 'docker/monitoring/prometheus/certkeeper-rules.yml');
const RULES_TEST = join(REPO, 'test/monitoring/certkeeper-rules.test.yml');
const DASHBOARD = join(REPO, 'docker/monitoring/grafana/certkeeper-dashboard.json');
const PROMTOOL = '/usr/bin/promtool';
const PROMETHEUS = '/usr/bin/prometheus';
const DAY = 86_400_000;

let world: ObserveWorld;
let acm: FakeAcm;
const daemons: Daemon[] = [];

beforeAll(async () => {
  requireBinaries(PROMTOOL, PROMETHEUS);
  world = await startWorld();
  acm = await startFakeAcm();
  acm.seed({
    domainName: 'mail.example.test',
    type: 'AMAZON_ISSUED',
    validationMethod: 'EMAIL',
    notBefore: new Date(Date.now() - 30 * DAY),
    notAfter: new Date(Date.now() + 200 * DAY),
  });
  vi.stubEnv('AWS_ENDPOINT_URL_ACM', acm.url);
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDOBSERVETEST');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'observe-test-secret');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
  vi.stubEnv('AWS_MAX_ATTEMPTS', '1');
});

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop({ graceMs: 1000 });
  world.received.length = 0;
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await acm?.close();
  await world?.close();
});

function run(cmd: string, args: string[], input?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    if (input !== undefined) {
      // A program that exits before reading all of stdin closes the pipe: its exit code says what happened.
      p.stdin!.on('error', () => {});
      p.stdin!.end(input);
    }
  });
}

/** Three certificates — fresh, due (past its planned renewal), never issued — plus ACM audit and one watch. */
async function fullDaemon(opts: { now?: () => Date; token?: string } = {}) {
  const started = Date.now();
  const d = await startDaemon(
    world,
    [{ name: 'fresh', seedDays: 90 }, { name: 'due', seedDays: 2 }, { name: 'never' }],
    {
      acmAudit: { regions: ['us-east-1'] },
      watch: [{ address: '127.0.0.1:1', name: 'closed-port', timeoutSeconds: 1 }],
    },
    { now: opts.now ?? (() => new Date(Date.now() + 1.5 * DAY)), token: opts.token ?? TOKEN },
  );
  daemons.push(d.daemon);
  await d.daemon.firstAudit;
  await d.daemon.firstWatch;
  return { ...d, started };
}

describe('metrics', () => {
  it('pass `promtool check metrics` and carry the series that migrate from cert-manager', async () => {
    const { daemon, store, started } = await fullDaemon();
    await store.updateState('fresh', { lastSuccess: new Date(started).toISOString() });
    await daemon.cache.refresh(['fresh']);
    const res = await daemon.app!.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    const text = res.body;
    const lint = await run(PROMTOOL, ['check', 'metrics'], text);
    expect(lint.out).toBe('');
    expect(lint.code).toBe(0);

    const s = samples(text);
    // Ready with a condition label, one series per condition, as cert-manager.
    expect(s.get('certkeeper_certificate_ready_status{name="fresh",condition="True"}')).toBe(1);
    expect(s.get('certkeeper_certificate_ready_status{name="fresh",condition="False"}')).toBe(0);
    expect(s.get('certkeeper_certificate_ready_status{name="due",condition="False"}')).toBe(1);
    expect(s.get('certkeeper_certificate_ready_status{name="never",condition="Unknown"}')).toBe(1);
    // notBefore / notAfter pair.
    const fresh = (await store.current('fresh'))!;
    expect(s.get('certkeeper_certificate_not_before_timestamp_seconds{name="fresh"}')).toBe(
      Math.floor(fresh.notBefore.getTime() / 1000),
    );
    expect(s.get('certkeeper_certificate_not_after_timestamp_seconds{name="fresh"}')).toBe(
      Math.floor(fresh.notAfter.getTime() / 1000),
    );
    // The due certificate's renewal timestamp stays at the planned moment (half of a 2-day lifetime), not "now".
    const due = (await store.current('due'))!;
    const planned = due.notAfter.getTime() - (due.notAfter.getTime() - due.notBefore.getTime()) / 2;
    const renewal = s.get('certkeeper_certificate_renewal_timestamp_seconds{name="due"}')!;
    expect(Math.abs(renewal - planned / 1000)).toBeLessThan(2);
    const daemonNow = Date.now() + 1.5 * DAY;
    expect(renewal * 1000).toBeLessThan(daemonNow - 0.4 * DAY);
    // Info series: serial, issuer, SANs, key type.
    const info = [...s.keys()].find((k) => k.startsWith('certkeeper_certificate_info{name="fresh"'));
    expect(info).toContain(`serial="${fresh.serial}"`);
    expect(info).toContain('issuer="fresh.certkeeper.test"');
    expect(info).toContain('sans="fresh.certkeeper.test"');
    expect(info).toContain('key_type="ecdsa-p256"');
    expect(
      [...s.keys()].some((k) => /^certkeeper_build_info\{version="\d+\.\d+\.\d+",node_version="v\d+/.test(k)),
    ).toBe(true);
    expect(s.get('certkeeper_certificate_last_success_timestamp_seconds{name="fresh"}')).toBe(
      Math.floor(started / 1000),
    );
    // The ACM audit and the watched endpoint export their series too.
    expect(s.get('certkeeper_acm_audit_findings{rule="email-validation",severity="warning"}')).toBe(1);
    expect(s.get('certkeeper_endpoint_probe_success{endpoint="closed-port"}')).toBe(0);
    // prom-client's *_total gauges are gone; its other process metrics stay.
    expect(text).not.toMatch(/^nodejs_active_handles_total/m);
    expect(text).toMatch(/^process_resident_memory_bytes /m);
  });
});

/** Metric names the daemon exports (histograms with their _bucket/_sum/_count series). */
async function exportedNames(daemon: Daemon): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await daemon.metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

function metricNamesIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:certkeeper|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!);
}

describe('shipped monitoring', () => {
  it('every Grafana panel queries metrics certkeeper exports', async () => {
    const { daemon } = await fullDaemon();
    const names = await exportedNames(daemon);
    const dash = JSON.parse(await fs.readFile(DASHBOARD, 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dash.panels.length).toBeGreaterThan(10);
    for (const p of dash.panels) {
      const used = p.targets.flatMap((t) => metricNamesIn(t.expr));
      expect(used.length, `panel "${p.title}" queries no certkeeper metric`).toBeGreaterThan(0);
      for (const n of used) expect(names, `panel "${p.title}" queries ${n}`).toContain(n);
    }
    // ... and so does every alert rule.
    const rules = parseYaml(await fs.readFile(RULES, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    for (const r of rules.groups.flatMap((g) => g.rules)) {
      for (const n of metricNamesIn(r.expr)) expect(names, `rule expression uses ${n}`).toContain(n);
    }
  });

  it('the alert rules pass `promtool check rules` and `promtool test rules`, each alert firing and not firing', async () => {
    const check = await run(PROMTOOL, ['check', 'rules', RULES]);
    expect(check.out).toContain('SUCCESS: 16 rules found');
    expect(check.code).toBe(0);
    const test = await run(PROMTOOL, ['test', 'rules', RULES_TEST]);
    expect(test.out).toContain('SUCCESS');
    expect(test.code).toBe(0);
    // Every alert has a case where it fires and one where it does not.
    const rules = parseYaml(await fs.readFile(RULES, 'utf8')) as { groups: { rules: { alert: string }[] }[] };
    const cases = (
      parseYaml(await fs.readFile(RULES_TEST, 'utf8')) as {
        tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
      }
    ).tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules.groups.flatMap((g) => g.rules)) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} never fires in the tests`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0) || alert.startsWith('CertkeeperAcmCritical'),
        `${alert} always fires`,
      ).toBe(true);
    }
  });

  it('a real Prometheus scrapes the read-only listener, loads the rules and returns every certificate', async () => {
    const { daemon } = await fullDaemon({ now: () => new Date() });
    const ro = await daemon.listenReadOnly('127.0.0.1:0');
    const dir = await fs.mkdtemp(join(world.work, 'prom-'));
    await fs.copyFile(RULES, join(dir, 'certkeeper-rules.yml'));
    await fs.writeFile(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'rule_files: [certkeeper-rules.yml]',
        'scrape_configs:',
        '  - job_name: certkeeper',
        `    static_configs: [{ targets: ["127.0.0.1:${ro.port}"] }]`,
      ].join('\n'),
    );
    const port = await freePort();
    const prom = spawnManaged(
      'prometheus',
      PROMETHEUS,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
      ],
      { logPath: join(dir, 'prometheus.log'), cwd: dir },
    );
    try {
      const base = `http://127.0.0.1:${port}`;
      let result: { metric: Record<string, string>; value: [number, string] }[] = [];
      const ok = await pollUntil(
        async () => {
          const r = await fetch(
            `${base}/api/v1/query?query=certkeeper_certificate_expiration_timestamp_seconds`,
            {
              signal: AbortSignal.timeout(2000),
            },
          );
          result = ((await r.json()) as { data: { result: typeof result } }).data.result;
          return result.length >= 2;
        },
        { attempts: 120, intervalMs: 500, abort: () => prom.exitCode() !== undefined },
      );
      expect(ok, prom.tail(20)).toBe(true);
      const byName = Object.fromEntries(result.map((r) => [r.metric.name, Number(r.value[1])]));
      // Every certificate that has a live certificate ("never" has none, so no expiry).
      expect(Object.keys(byName).sort()).toEqual(['due', 'fresh']);
      const fresh = daemon.cache.get('fresh')!.live!;
      expect(byName.fresh).toBe(Math.floor(fresh.notAfter.getTime() / 1000));
      const rules = (await (await fetch(`${base}/api/v1/rules`)).json()) as {
        data: { groups: { rules: { name: string; health: string }[] }[] };
      };
      const loaded = rules.data.groups.flatMap((g) => g.rules);
      expect(loaded).toHaveLength(16);
      expect(loaded.every((r) => r.health !== 'err')).toBe(true);
    } finally {
      await prom.stop();
    }
  });
});

describe('read-only listener', () => {
  it('binds any address without a token and serves only GET /, /metrics, /healthz and /readyz', async () => {
    const { daemon } = await startDaemon(
      world,
      [{ name: 'fresh', seedDays: 90 }],
      {
        server: { listen: '127.0.0.1:0', metricsListen: '0.0.0.0:0' },
      },
      { token: undefined },
    );
    daemons.push(daemon);
    // The API itself still refuses all interfaces without a token.
    await expect(daemon.listen('0.0.0.0:0')).rejects.toThrow(/without an API token/);
    const ro = await daemon.listenReadOnly();
    expect(ro.host).toBe('0.0.0.0');
    const base = `http://127.0.0.1:${ro.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await fetch(`${base}/metrics`);
    expect(await metrics.text()).toContain(
      'certkeeper_certificate_expiration_timestamp_seconds{name="fresh"}',
    );
    const page = await (await fetch(`${base}/`)).text();
    expect(page).toContain('data-cert="fresh"');
    expect(page).not.toContain('<button type="button" class="renew"');
    const renew = await fetch(`${base}/v1/renew`, { method: 'POST' });
    expect(renew.status).toBe(404);
    expect(((await renew.json()) as { error: { code: string } }).error.code).toBe('CK_ERR_READ_ONLY');
    expect((await fetch(`${base}/v1/jobs`)).status).toBe(404);
  });

  it('logs /readyz 503s below error level', async () => {
    const lines: { level: number; msg: string; status?: number }[] = [];
    const logger = pino(
      { level: 'trace' },
      new Writable({
        write(chunk, _enc, cb) {
          for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
          cb();
        },
      }),
    );
    const { daemon } = await startDaemon(world, [{ name: 'never' }], {}, { logger });
    daemons.push(daemon);
    const res = await daemon.app!.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    const line = lines.find((l) => l.msg === 'GET /readyz 503');
    expect(line).toBeDefined();
    expect(line!.level).toBeLessThan(50);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });
});

describe('status page', () => {
  it('is readable from loopback, asks others for the token, and 403s without any token', async () => {
    const { daemon } = await startDaemon(world, [{ name: 'fresh', seedDays: 90 }]);
    daemons.push(daemon);
    const app = daemon.app!;
    const local = await app.inject({ method: 'GET', url: '/' });
    expect(local.statusCode).toBe(200);
    expect(local.headers['content-type']).toMatch(/^text\/html/);
    expect(String(local.headers['content-security-policy'])).toMatch(/default-src 'none'/);
    const remote = await app.inject({ method: 'GET', url: '/', remoteAddress: '192.0.2.10' });
    expect(remote.statusCode).toBe(401);
    expect(remote.headers['www-authenticate']).toMatch(/^Basic /);
    expect(remote.body).not.toContain('fresh.certkeeper.test');
    const basic = `Basic ${Buffer.from(`ops:${TOKEN}`).toString('base64')}`;
    const withToken = await app.inject({
      method: 'GET',
      url: '/',
      remoteAddress: '192.0.2.10',
      headers: { authorization: basic },
    });
    expect(withToken.statusCode).toBe(200);
    const wrong = await app.inject({
      method: 'GET',
      url: '/',
      remoteAddress: '192.0.2.10',
      headers: { authorization: `Basic ${Buffer.from('ops:wrong-token-wrong-token').toString('base64')}` },
    });
    expect(wrong.statusCode).toBe(401);
    const bearer = await app.inject({
      method: 'GET',
      url: '/',
      remoteAddress: '192.0.2.10',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(bearer.statusCode).toBe(200);

    const open = await startDaemon(world, [{ name: 'fresh', seedDays: 90 }], {
      server: { publicStatus: true },
    });
    daemons.push(open.daemon);
    expect(
      (await open.daemon.app!.inject({ method: 'GET', url: '/', remoteAddress: '192.0.2.10' })).statusCode,
    ).toBe(200);

    const tokenless = await startDaemon(world, [{ name: 'fresh', seedDays: 90 }], {}, { token: undefined });
    daemons.push(tokenless.daemon);
    const closed = await tokenless.daemon.app!.inject({
      method: 'GET',
      url: '/',
      remoteAddress: '192.0.2.10',
    });
    expect(closed.statusCode).toBe(403);
    expect(closed.json().error.hint).toMatch(/publicStatus/);
  });

  it('shows the ACM audit findings with their fix, the watched endpoints and the planned renewal', async () => {
    const { daemon } = await fullDaemon();
    const page = (await daemon.app!.inject({ method: 'GET', url: '/' })).body;
    expect(page).toMatch(
      /<section id="acm">[\s\S]*email-validation[\s\S]*mail\.example\.test[\s\S]*<strong>Fix:<\/strong>/,
    );
    expect(page).toMatch(/<tr data-endpoint="closed-port">[\s\S]*?unreachable[\s\S]*?connection refused/);
    // "due" is past its planned renewal by more than an hour: the page says so.
    expect(page).toMatch(/<tr data-cert="due">[\s\S]*?overdue/);
    expect(page).toMatch(/<tr data-cert="never">[\s\S]*?missing/);
  });

  it('escapes what comes from outside and shows the error with its fix, no keys or tokens', async () => {
    const { daemon, store } = await startDaemon(world, [{ name: 'fresh', seedDays: 90 }]);
    daemons.push(daemon);
    await store.updateState('fresh', {
      failures: 2,
      lastAttempt: {
        at: new Date().toISOString(),
        result: 'failure',
        message: 'the CA said <img src=x onerror=alert(1)> & "quoted"',
        code: 'CK_ERR_ACME',
        hint: 'fix <b>this</b> first',
      },
    });
    await daemon.cache.refresh(['fresh']);
    const page = (await daemon.app!.inject({ method: 'GET', url: '/' })).body;
    expect(page).toContain('the CA said &lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot;');
    expect(page).not.toContain('<img');
    expect(page).toContain('<strong>Fix:</strong> fix &lt;b&gt;this&lt;/b&gt; first');
    expect(page).not.toContain('PRIVATE KEY');
    expect(page).not.toContain(TOKEN);
    // The table is in the HTML itself (server-rendered): name, domain, days left, lifetime bar.
    expect(page).toMatch(/<tr data-cert="fresh">/);
    expect(page).toContain('fresh.certkeeper.test');
    expect(page).toMatch(/<svg class="bar"/);
  });
});
