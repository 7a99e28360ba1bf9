/**
 * The daemon's daily ACM audit: the real @aws-sdk/client-acm reaches the local fake ACM through AWS_ENDPOINT_URL_ACM
 * (as it would reach AWS), alerts go to a real local receiver, the clock and timers are injected. No CA is needed:
 * the daemon does not check certificates at start here.
 */
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import type { Timers } from '../src/daemon/scheduler.js';
import { silentLogger } from '../src/log.js';
import { type FakeAcm, startFakeAcm } from './fakes/acm-server.js';

const DAY = 86_400_000;
const START = new Date('2026-03-01T12:00:00Z');
const ALB = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188';
const CF = 'arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL';

let clock = START.getTime();
const now = () => new Date(clock);
let fake: FakeAcm;
let receiver: Server;
let receiverUrl: string;
let received: { path: string; body: Record<string, unknown> }[] = [];
let work: string;
const arn: Record<string, string> = {};
const daemons: Daemon[] = [];

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-daemon-acm-'));
  fake = await startFakeAcm({ now });
  const base = { notBefore: new Date(clock - 30 * DAY), createdAt: new Date(clock - 30 * DAY) };
  arn.email = fake.seed({
    ...base,
    domainName: 'mail-validated.example.test',
    type: 'AMAZON_ISSUED',
    validationMethod: 'EMAIL',
    notAfter: new Date(clock + 200 * DAY),
    inUseBy: [ALB],
  }).arn;
  arn.unusedImport = fake.seed({
    ...base,
    domainName: 'unused.example.test',
    type: 'IMPORTED',
    keyAlgorithm: 'EC_prime256v1',
    notAfter: new Date(clock + 80 * DAY),
  }).arn;
  arn.managed = fake.seed({
    ...base,
    domainName: 'managed.example.test',
    type: 'IMPORTED',
    keyAlgorithm: 'EC_prime256v1',
    notAfter: new Date(clock + 60 * DAY),
    inUseBy: [CF],
  }).arn;
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString()) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  vi.stubEnv('AWS_ENDPOINT_URL_ACM', fake.url);
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDDAEMONTEST');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'daemon-test-secret');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
  vi.stubEnv('AWS_MAX_ATTEMPTS', '1');
});

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop({ graceMs: 1000 });
  received = [];
  fake.clearFailures();
  clock = START.getTime();
});

afterAll(async () => {
  vi.unstubAllEnvs();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
  await fake?.close();
  await fs.rm(work, { recursive: true, force: true });
});

/** Timers that only run when the test says so. */
function manualTimers() {
  const pending = new Map<object, { fn: () => void; ms: number }>();
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const h = {};
      pending.set(h, { fn, ms });
      return h;
    },
    clearTimeout: (h) => void pending.delete(h as object),
  };
  /** Moves the clock forward by `totalMs`, running each timer that falls due on the way. */
  const advance = (totalMs: number) => {
    const end = clock + totalMs;
    for (let i = 0; i < 20 && pending.size; i++) {
      const [h, t] = [...pending.entries()].sort((a, b) => a[1].ms - b[1].ms)[0]!;
      if (clock + t.ms > end) break;
      pending.delete(h);
      clock += t.ms;
      t.fn();
    }
    clock = end;
  };
  return { timers, pending, advance };
}

async function setup(extra: Partial<ConfigInput> = {}) {
  const storage = await fs.mkdtemp(join(work, 'le-'));
  const config = parseConfig({
    acme: { directoryUrl: 'http://127.0.0.1:9/directory' },
    storage: { path: storage },
    schedule: { cron: '0 3 * * *', jitterSeconds: 0 },
    acmAudit: { regions: ['us-east-1'] },
    notify: [
      { type: 'webhook', url: `${receiverUrl}/hook`, events: ['audit'] },
      { type: 'slack', url: `${receiverUrl}/slack`, events: ['audit'] },
    ],
    certificates: [
      {
        name: 'cdn',
        domains: ['managed.example.test'],
        challenge: { type: 'http-01', webroot: join(work, 'www') },
        deploy: [{ type: 'acm', arn: arn.managed, cloudfront: true }],
      },
    ],
    ...extra,
  });
  const t = manualTimers();
  const daemon = createDaemon(config, {
    logger: silentLogger,
    checkAtStart: false,
    now,
    timers: t.timers,
    notifyRetryDelaysMs: [0],
    notifySleep: async () => {},
    processMetrics: false,
  });
  daemons.push(daemon);
  await daemon.start();
  return { daemon, app: daemon.app!, ...t };
}

const alertsOf = (path: string) => received.filter((r) => r.path === path).map((r) => r.body);

describe('daily ACM audit in the daemon', () => {
  it('runs at start: findings over the API and as metrics, one alert per critical finding', async () => {
    const { daemon, app } = await setup();
    await daemon.firstAudit;
    await daemon.alerts.flush();

    const res = await app.inject({ method: 'GET', url: '/v1/acm/findings' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.lastRun).toMatchObject({ ok: true, findings: 2, at: START.toISOString() });
    expect(body.nextRunAt).toBe(new Date(clock + DAY).toISOString());
    const rules = body.findings.map((f: { arn: string; rule: string; severity: string }) => [
      f.arn,
      f.rule,
      f.severity,
    ]);
    expect(rules).toEqual(
      expect.arrayContaining([
        [arn.email, 'email-validation', 'critical'],
        [arn.unusedImport, 'unmanaged-import', 'warning'],
      ]),
    );
    expect(rules).toHaveLength(2); // the ARN configured on the acm deployer counts as managed
    expect(body.counts['email-validation']).toEqual({ critical: 1, warning: 0 });
    const critical = await app.inject({ method: 'GET', url: '/v1/acm/findings?severity=critical' });
    expect(critical.json().findings).toHaveLength(1);

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('certkeeper_acm_audit_findings{rule="email-validation",severity="critical"} 1');
    expect(metrics).toContain('certkeeper_acm_audit_findings{rule="unmanaged-import",severity="warning"} 1');
    expect(metrics).toContain('certkeeper_acm_audit_findings{rule="expiring",severity="critical"} 0');
    expect(metrics).toContain(`certkeeper_acm_audit_last_run_timestamp_seconds ${START.getTime() / 1000}`);
    expect(metrics).toContain('certkeeper_acm_audit_runs_total{result="success"} 1');

    // Only the critical finding alerts, to both targets.
    const hooks = alertsOf('/hook');
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({
      version: 1,
      source: 'certkeeper',
      event: 'audit',
      certificate: 'mail-validated.example.test',
      code: 'ACM_AUDIT_EMAIL_VALIDATION',
      audit: {
        arn: arn.email,
        region: 'us-east-1',
        rule: 'email-validation',
        severity: 'critical',
        inUseBy: [ALB],
      },
    });
    // acmAudit.replace is off: the alert carries the exact command.
    expect(hooks[0]!.hint).toBe(
      `run: certkeeper acm replace ${arn.email} --dry-run, then certkeeper acm replace ${arn.email} --yes (or set acmAudit.replace: true to let the daemon do it)`,
    );
    const slack = alertsOf('/slack');
    expect(slack).toHaveLength(1);
    expect(String(slack[0]!.text)).toContain('mail-validated.example.test');
  });

  it('repeats daily on its timer, alerting again for the same ARN and rule only after a day', async () => {
    const { daemon, app, advance, pending } = await setup();
    await daemon.firstAudit;
    await daemon.alerts.flush();
    expect(alertsOf('/hook')).toHaveLength(1);

    // A run the same day (e.g. joined by hand) finds the same problem: no second alert.
    clock += 3600_000;
    await daemon.auditor!.run();
    await daemon.alerts.flush();
    expect(alertsOf('/hook')).toHaveLength(1);

    // The daily timer (re-armed in steps of at most 6 hours) runs the audit a day later, which alerts again.
    expect([...pending.values()].every((t) => t.ms <= 6 * 3600_000)).toBe(true);
    const runs = daemon.auditor!.runs;
    advance(DAY);
    expect(daemon.auditor!.runs).toBe(runs + 1); // the timer started it
    await daemon.auditor!.run(); // joins the run the timer started, if still going
    await daemon.alerts.flush();
    expect(alertsOf('/hook')).toHaveLength(2);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('certkeeper_acm_audit_runs_total{result="success"} 3');
  });

  it('an AWS error is logged, counted and retried in an hour; the daemon keeps serving and the last findings stay', async () => {
    const { daemon, app } = await setup();
    await daemon.firstAudit;
    fake.failNext(
      'ListCertificates',
      1,
      'AccessDeniedException',
      'User is not authorized to perform acm:ListCertificates',
    );
    clock += 3600_000;
    await daemon.auditor!.run();

    const body = (await app.inject({ method: 'GET', url: '/v1/acm/findings' })).json();
    expect(body.lastRun.ok).toBe(false);
    expect(body.lastRun.error.message).toContain('AccessDeniedException');
    expect(body.lastRun.error.hint).toContain('acm:ListCertificates');
    expect(body.nextRunAt).toBe(new Date(clock + 3600_000).toISOString());
    expect(body.lastSuccessAt).toBe(START.toISOString());
    expect(body.findings).toHaveLength(2);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('certkeeper_acm_audit_runs_total{result="failure"} 1');
    expect(metrics).toContain('certkeeper_acm_audit_findings{rule="email-validation",severity="critical"} 1');
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('without acmAudit: 404 with the fix, no audit metrics, no AWS call', async () => {
    const before = fake.requests.length;
    const { daemon, app } = await setup({ acmAudit: undefined });
    expect(daemon.auditor).toBeUndefined();
    const res = await app.inject({ method: 'GET', url: '/v1/acm/findings' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({ code: 'CK_ERR_ACM_AUDIT_OFF' });
    expect(res.json().error.hint).toContain('acmAudit');
    expect((await app.inject({ method: 'GET', url: '/metrics' })).body).not.toContain('acm_audit');
    expect(fake.requests.length).toBe(before);
  });
});
