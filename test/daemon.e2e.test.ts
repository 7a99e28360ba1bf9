/**
 * The daemon against Pebble + nginx: issues at start, renews on an HTTP trigger, coalesces a burst of triggers into
 * one order per due certificate, follows an ARI window, and stops cleanly on SIGTERM in the middle of an order.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ariCertId } from '../src/acme/ari-id.js';
import { type AcmeRequestEvent, acmeEvents } from '../src/acme/http.js';
import { parseConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';
import { type AriServer, startAriServer } from './fakes/ari-server.js';
import {
  type NginxHandle,
  type PebbleHandle,
  pollUntil,
  simpleRequest,
  startNginx,
  startPebble,
} from './harness/index.js';

const TOKEN = 'e2e-token-0123456789abcdef';
const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;
let webroot: string;
const daemons: Daemon[] = [];

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-daemon-e2e-'));
  webroot = join(work, 'www');
  await fs.mkdir(webroot);
  await fs.chmod(work, 0o755);
  nginx = await startNginx({ webroot, workerUser: 'nobody nogroup' });
  pebble = await startPebble({ httpPort: nginx.httpPort });
});

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop({ graceMs: 5000 });
});

afterAll(async () => {
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

function configInput(storage: string, names: string[], extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath, email: 'ops@certkeeper.test' },
    storage: { path: storage },
    selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
    server: { listen: '127.0.0.1:0' },
    schedule: { cron: '0 3 * * *', jitterSeconds: 0 },
    certificates: names.map((name) => ({
      name,
      domains: [`${name}.certkeeper.test`],
      challenge: { type: 'http-01' as const, webroot },
    })),
    ...extra,
  };
}

async function startDaemon(
  input: ConfigInput,
  opts: { checkAtStart?: boolean; now?: () => Date; logger?: typeof silentLogger } = {},
) {
  const daemon = createDaemon(parseConfig(input), {
    logger: opts.logger ?? silentLogger,
    token: TOKEN,
    checkAtStart: opts.checkAtStart ?? true,
    now: opts.now,
    processMetrics: false,
  });
  daemons.push(daemon);
  await daemon.start();
  const { port } = await daemon.listen();
  return { daemon, base: `http://127.0.0.1:${port}` };
}

const auth = { authorization: `Bearer ${TOKEN}` };

describe('certkeeper run against Pebble', () => {
  it('issues at start; an HTTP trigger renews and its job reports it; readyz follows the clock', async () => {
    let clock: Date | undefined;
    const storage = join(work, 'one');
    const { daemon, base } = await startDaemon(configInput(storage, ['site']), {
      now: () => clock ?? new Date(),
    });
    await daemon.queue.idle();
    const store = new CertStore(storage);
    const first = await store.current('site');
    expect(first?.version).toBe(1);
    expect(daemon.queue.list()[0]).toMatchObject({ source: 'startup', state: 'succeeded' });

    const denied = await simpleRequest(`${base}/v1/renew`, { method: 'POST', body: '{"force":true}' });
    expect(denied.status).toBe(401);

    const res = await simpleRequest(`${base}/v1/renew`, {
      method: 'POST',
      body: JSON.stringify({ names: ['site'], force: true }),
      headers: auth,
    });
    expect(res.status).toBe(202);
    const { jobId } = JSON.parse(res.body) as { jobId: string };
    let job: Record<string, unknown> = {};
    const finished = await pollUntil(
      async () => {
        job = JSON.parse((await simpleRequest(`${base}/v1/jobs/${jobId}`)).body);
        return job.state !== 'queued' && job.state !== 'running';
      },
      { attempts: 300, intervalMs: 100 },
    );
    expect(finished).toBe(true);
    expect(job).toMatchObject({ id: jobId, state: 'succeeded', source: 'api', force: true });
    expect(job.results).toEqual([expect.objectContaining({ name: 'site', status: 'renewed', version: 2 })]);
    const second = await store.current('site');
    expect(second?.serial).not.toBe(first?.serial);

    const certs = JSON.parse((await simpleRequest(`${base}/v1/certificates`)).body).certificates;
    expect(certs).toEqual([
      expect.objectContaining({
        name: 'site',
        domains: ['site.certkeeper.test'],
        serial: second?.serial,
        notAfter: second?.notAfter.toISOString(),
        daysLeft: expect.any(Number),
        nextRenewal: expect.any(String),
        lastAttempt: expect.objectContaining({ result: 'success' }),
      }),
    ]);
    // No key material in anything the API answers (status rows, jobs, metrics).
    for (const path of ['/v1/certificates', '/v1/jobs', `/v1/jobs/${jobId}`, '/metrics', '/readyz']) {
      const body = (await simpleRequest(`${base}${path}`, { headers: auth })).body;
      expect(body, path).not.toContain('PRIVATE KEY');
      expect(body, path).not.toContain(second!.keyPem.split('\n')[1]!);
    }
    const metrics = (await simpleRequest(`${base}/metrics`)).body;
    expect(metrics).toMatch(/^certkeeper_renewals_total\{name="site",result="success"\} 2$/m);
    expect(metrics).toMatch(/^certkeeper_acme_requests_total\{endpoint="newOrder",status="201"\} 2$/m);

    expect((await simpleRequest(`${base}/readyz`)).status).toBe(200);
    clock = new Date(second!.notAfter.getTime() - 13 * 86_400_000);
    const notReady = await simpleRequest(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.body).problems[0]).toMatchObject({ name: 'site' });
  });

  it('sends a success alert to the configured webhook after issuing', async () => {
    const got: Record<string, unknown>[] = [];
    const receiver = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      const { daemon } = await startDaemon(
        configInput(join(work, 'success-alert'), ['told'], {
          notify: [{ type: 'webhook', url, events: ['success', 'failure'] }],
        }),
      );
      await daemon.queue.idle();
      const serial = (await new CertStore(join(work, 'success-alert')).current('told'))?.serial;
      expect(serial).toBeDefined();
      expect(await pollUntil(async () => got.length > 0, { attempts: 100, intervalMs: 50 })).toBe(true);
      expect(got).toEqual([expect.objectContaining({ event: 'success', certificate: 'told', serial })]);
      expect(JSON.stringify(got)).not.toContain('PRIVATE KEY');
    } finally {
      receiver.closeAllConnections();
      await new Promise((r) => receiver.close(r));
    }
  });

  it('100 concurrent triggers cause exactly one order per due certificate', async () => {
    const names = ['burst-a', 'burst-b', 'burst-c'];
    const { daemon, base } = await startDaemon(configInput(join(work, 'burst'), names), {
      checkAtStart: false,
    });
    const orders: string[] = [];
    const count = (e: AcmeRequestEvent) => {
      if (e.endpoint === 'newOrder') orders.push(e.endpoint);
    };
    acmeEvents.on('request', count);
    try {
      const answers = await Promise.all(
        Array.from({ length: 100 }, () =>
          simpleRequest(`${base}/v1/renew`, { method: 'POST', body: '{}', headers: auth, timeoutMs: 15_000 }),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(100).fill(202));
      await daemon.queue.idle();
      expect(orders).toHaveLength(3);
      const jobs = new Set(answers.map((a) => JSON.parse(a.body).jobId));
      expect(jobs.size).toBeLessThanOrEqual(2);
      const store = new CertStore(join(work, 'burst'));
      for (const n of names) expect((await store.current(n))?.version).toBe(1);
    } finally {
      acmeEvents.off('request', count);
    }
  });

  it("renews inside the CA's ARI window, asked for with the live certificate's certID", async () => {
    const ari: AriServer = await startAriServer({
      upstreamDirectoryUrl: pebble.directoryUrl,
      caBundlePath: pebble.caBundlePath,
      defaultRetryAfterSeconds: 3600,
    });
    try {
      const lines: Record<string, unknown>[] = [];
      const logger = pino(
        { level: 'info' },
        new Writable({
          write(chunk, _enc, cb) {
            lines.push(JSON.parse(String(chunk)));
            cb();
          },
        }),
      );
      const storage = join(work, 'ari');
      const input = configInput(storage, ['ari']);
      input.acme = { ...input.acme, directoryUrl: ari.directoryUrl };
      const { daemon } = await startDaemon(input, { logger });
      await daemon.queue.idle();
      const store = new CertStore(storage);
      const first = (await store.current('ari'))!;
      expect(first.version).toBe(1);
      const certId = ariCertId(first.certPem);
      // a window already over: the CA wants this certificate replaced now (a moment inside an open window
      // would be random, maybe later)
      ari.setWindow(certId, { start: new Date(Date.now() - 7200_000), end: new Date(Date.now() - 60_000) });
      await daemon.tick();
      await daemon.queue.idle();
      expect(ari.requests).toContain(certId);
      const second = (await store.current('ari'))!;
      expect(second.version).toBe(2);
      const job = daemon.queue.list()[0]!;
      expect(job.results?.[0]).toMatchObject({ status: 'renewed', reason: expect.stringMatching(/ARI/) });
      expect(lines.find((l) => l.event === 'ari.window' && l.cert === 'ari')).toBeTruthy();
      expect(lines.find((l) => l.event === 'renew.obtaining' && l.reason === 'ari-window')).toMatchObject({
        cert: 'ari',
        domain: 'ari.certkeeper.test',
        jobId: job.id,
      });
      // the new certificate gets its own window (default: a month out), so nothing more is due
      await daemon.tick();
      await daemon.queue.idle();
      expect((await store.current('ari'))?.version).toBe(2);
      expect((await store.readState('ari'))?.ari?.start).toBeTruthy();
    } finally {
      await ari.stop();
    }
  });

  it('SIGTERM in the middle of an order exits 0 and leaves no challenge file and no partial certificate', async () => {
    // The self-check connects here and never gets an answer: the order hangs with its challenge file presented.
    const sockets = new Set<import('node:net').Socket>();
    const hang: Server = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const hangPort = (hang.address() as import('node:net').AddressInfo).port;
    const dir = join(work, 'sigterm');
    const ownRoot = join(dir, 'www');
    await fs.mkdir(ownRoot, { recursive: true });
    const input = configInput(join(dir, 'le'), ['slow']);
    input.selfCheck = { httpPort: hangPort, resolvers: [pebble.dnsServer], timeoutSeconds: 4 };
    input.certificates![0]!.challenge = { type: 'http-01', webroot: ownRoot };
    const cfgFile = join(dir, 'certkeeper.yml');
    await fs.writeFile(cfgFile, JSON.stringify(input));
    const logPath = join(dir, 'out.log');
    const out = await fs.open(logPath, 'w');
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', '-c', cfgFile, '--grace', '1'], {
        env: { PATH: process.env.PATH, CERTKEEPER_TOKEN: TOKEN, LOG_FORMAT: 'json' },
        stdio: ['ignore', out.fd, out.fd],
      });
      const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
      const challengeDir = join(ownRoot, '.well-known', 'acme-challenge');
      const presented = await pollUntil(async () => (await fs.readdir(challengeDir)).length > 0, {
        attempts: 300,
        intervalMs: 50,
      });
      expect(presented, await fs.readFile(logPath, 'utf8')).toBe(true);
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000))]);
      const log = await fs.readFile(logPath, 'utf8');
      expect(code, log).toBe(0);
      expect(await fs.readdir(challengeDir)).toEqual([]);
      // only the first-boot placeholder (version 0), never a partial certificate
      expect((await new CertStore(join(dir, 'le')).current('slow'))?.placeholder).toBe(true);
      const archive = await fs.readdir(join(dir, 'le', 'archive', 'slow')).catch(() => []);
      expect(archive.filter((f) => !/0\.pem$|^\.v0$/.test(f))).toEqual([]);
      const events = log
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { event?: string });
      expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['daemon.signal', 'daemon.stopped']));
      expect(log).not.toContain(TOKEN);
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      await out.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => hang.close(r));
    }
  });
});
