/**
 * Configuration reload: POST /v1/reload in process (app.inject), and SIGHUP to a real `certkeeper run`. The CA is
 * a local server refusing every order — optionally holding its answers back, so a job is still running while the
 * configuration changes under it. Alerts go to a local webhook receiver.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import type { Timers } from '../src/daemon/scheduler.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';
import { freePort, pollUntil, simpleRequest } from './harness/index.js';

const TOKEN = 'reload-token-0123456789abcdef';
const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let work: string;
let ca: Server;
let caUrl: string;
let hold = false;
const held: ServerResponse[] = [];
let receiver: Server;
let receiverUrl: string;
let received: Record<string, unknown>[] = [];
const daemons: Daemon[] = [];

function refuse(res: ServerResponse): void {
  res.writeHead(403, { 'content-type': 'application/problem+json' });
  res.end(
    JSON.stringify({
      type: 'urn:ietf:params:acme:error:unauthorized',
      detail: 'this test CA refuses everyone',
    }),
  );
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-reload-'));
  ca = createServer((_req, res) => (hold ? held.push(res) : refuse(res)));
  await new Promise<void>((r) => ca.listen(0, '127.0.0.1', r));
  caUrl = `http://127.0.0.1:${(ca.address() as AddressInfo).port}/dir`;
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ ...JSON.parse(Buffer.concat(chunks).toString()), path: req.url });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});

afterEach(async () => {
  hold = false;
  for (const r of held.splice(0)) refuse(r);
  for (const d of daemons.splice(0)) await d.stop({ graceMs: 1000 });
  received = [];
});

afterAll(async () => {
  ca?.closeAllConnections();
  receiver?.closeAllConnections();
  await new Promise((r) => ca?.close(r));
  await new Promise((r) => receiver?.close(r));
  await fs.rm(work, { recursive: true, force: true });
});

const noTimers: Timers = { setTimeout: () => ({}), clearTimeout: () => {} };

function yaml(names: string[], extra = ''): string {
  return `acme: { directoryUrl: "${caUrl}" }
storage: { path: ./le }
schedule: { cron: "0 3 * * *", jitterSeconds: 0 }
notify:
  - { type: webhook, url: "${receiverUrl}", events: [failure] }
${extra}certificates:
${names.map((n) => `  - { name: ${n}, domains: [${n}.certkeeper.test], challenge: { type: http-01, webroot: ./www } }`).join('\n')}
`;
}

async function setup(names: string[]) {
  const dir = await fs.mkdtemp(join(work, 'd-'));
  const file = join(dir, 'certkeeper.yml');
  await fs.writeFile(file, yaml(names));
  // Every first certificate has a valid 90-day certificate: not due, so only what a test adds gets ordered.
  const { certPem, keyPem } = await createSelfSigned({
    commonName: `${names[0]}.certkeeper.test`,
    altNames: [`${names[0]}.certkeeper.test`],
    days: 90,
  });
  await new CertStore(join(dir, 'le')).save(names[0]!, {
    domains: [`${names[0]}.certkeeper.test`],
    keyType: 'ecdsa-p256',
    fullchainPem: certPem,
    keyPem,
  });
  const daemon = createDaemon(loadConfig(file, {}), {
    logger: silentLogger,
    token: TOKEN,
    checkAtStart: false,
    timers: noTimers,
    notifyRetryDelaysMs: [0],
    notifySleep: async () => {},
    processMetrics: false,
    loadConfig: async () => loadConfig(file, {}),
  });
  daemons.push(daemon);
  await daemon.start();
  const app = daemon.app!;
  const reload = (auth = true) =>
    app.inject({
      method: 'POST',
      url: '/v1/reload',
      headers: auth ? { authorization: `Bearer ${TOKEN}` } : {},
    });
  const names_ = async () =>
    (
      (await app.inject({ method: 'GET', url: '/v1/certificates' })).json().certificates as { name: string }[]
    ).map((c) => c.name);
  const metric = async (name: string) => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    return new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
  };
  return { daemon, file, reload, names: names_, metric };
}

describe('POST /v1/reload', () => {
  it('needs the token like POST /v1/renew', async () => {
    const { reload, daemon } = await setup(['a']);
    const r = await reload(false);
    expect(r.statusCode).toBe(401);
    expect(r.json().error.code).toBe('CK_ERR_UNAUTHORIZED');
    expect(daemon.reloader.last).toBeUndefined();
    const get = await daemon.app!.inject({ method: 'GET', url: '/v1/reload' });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('POST');
  });

  it('a valid file is applied: a new certificate is listed and ordered at once, the schedule and targets change', async () => {
    const { daemon, file, reload, names, metric } = await setup(['a']);
    expect(await names()).toEqual(['a']);
    await fs.writeFile(
      file,
      yaml(['a', 'b'])
        .replace('0 3 * * *', '30 4 * * *')
        .replace(`url: "${receiverUrl}"`, `url: "${receiverUrl}-new"`),
    );
    const r = await reload();
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({
      reloaded: true,
      changed: ['schedule', 'notify', 'certificates added: b'],
      restartNeeded: [],
    });
    expect(await names()).toEqual(['a', 'b']);
    expect(daemon.scheduler.expression).toBe('30 4 * * *');
    // b has no certificate yet: the reload's due-check queued it (and the refusing CA failed it).
    await daemon.queue.idle();
    const job = daemon.queue.list().find((j) => j.names.includes('b'));
    expect(job).toMatchObject({ source: 'reload', state: 'failed' }); // finished: the refusing CA failed it
    expect(job?.names).not.toContain('a'); // a was not due: nothing to do for it
    expect(await metric('certkeeper_config_last_reload_successful')).toBe('1');
    expect(await metric('certkeeper_config_reloads_total{result="success"}')).toBe('1');
    await daemon.alerts.flush();
    // the failure alert for b went to the new webhook address
    expect(received.map((a) => [a.certificate, a.path])).toEqual([['b', '/hook-new']]);
  });

  it('an invalid file keeps the old configuration running and says why: 422, log, alert, metric', async () => {
    const { daemon, file, reload, names, metric } = await setup(['a']);
    const before = daemon.config;
    await fs.writeFile(
      file,
      yaml(['a', 'c']).replace('domains: [c.certkeeper.test]', 'domains: [*.certkeeper.test]'),
    );
    const r = await reload();
    expect(r.statusCode).toBe(422);
    const err = r.json().error;
    expect(err.code).toBe('CK_ERR_CONFIG_INVALID');
    expect(err.message).toMatch(/keeps running the previous configuration/);
    expect(err.issues).toEqual([
      expect.stringMatching(
        /line 8, column \d+: \*\.certkeeper\.test is read as a YAML alias.*quote wildcard names/,
      ),
    ]);
    expect(daemon.config).toBe(before);
    expect(await names()).toEqual(['a']);
    expect(await metric('certkeeper_config_last_reload_successful')).toBe('0');
    expect(await metric('certkeeper_config_reloads_total{result="failure"}')).toBe('1');
    await daemon.alerts.flush();
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      event: 'failure',
      certificate: 'configuration',
      code: 'CK_ERR_CONFIG',
    });
    expect(received[0]!.message).toMatch(
      /^configuration reload failed; certkeeper keeps running the previous configuration: .*quote wildcard/,
    );

    // A schema problem, and a cron expression only the scheduler can judge, are refused the same way.
    await fs.writeFile(file, yaml(['a']).replace('"0 3 * * *"', '"not cron"'));
    const cron = await reload();
    expect(cron.statusCode).toBe(422);
    expect(cron.json().error.issues[0]).toMatch(/schedule\.cron: "not cron" is not a cron expression/);
    // fixed again: back to 1
    await fs.writeFile(file, yaml(['a']));
    expect((await reload()).statusCode).toBe(200);
    expect(await metric('certkeeper_config_last_reload_successful')).toBe('1');
  });

  it('a running job is not dropped: it finishes with the configuration it started with', async () => {
    const { daemon, file, reload } = await setup(['a']);
    hold = true; // the CA holds its answers: the job stays running
    const { job } = daemon.queue.submit({ names: ['a'], force: true, source: 'api' });
    await pollUntil(async () => held.length > 0, { attempts: 100, intervalMs: 20 });
    expect(daemon.queue.get(job.id)?.state).toBe('running');
    // The new file removes a and adds d; the reload returns while the job still runs.
    await fs.writeFile(file, yaml(['d']));
    const r = await reload();
    expect(r.statusCode).toBe(200);
    expect(r.json().changed).toEqual(['certificates added: d', 'certificates removed: a']);
    expect(daemon.queue.get(job.id)?.state).toBe('running');
    hold = false;
    for (const res of held.splice(0)) refuse(res);
    await daemon.queue.idle();
    const done = daemon.queue.get(job.id)!;
    expect(done.state).toBe('failed'); // finished with the CA's refusal, not 'cancelled'
    expect(done.results?.[0]).toMatchObject({ name: 'a', status: 'failed' });
    expect(done.results?.[0]?.reason).toMatch(/refuses everyone/); // the CA's answer, not a cancellation
  });

  it('server and acmAudit changes are reported as needing a restart', async () => {
    const { file, reload } = await setup(['a']);
    await fs.writeFile(file, yaml(['a'], 'server: { listen: "127.0.0.1:9999" }\n'));
    const r = await reload();
    expect(r.json()).toMatchObject({ changed: ['server'], restartNeeded: ['server'] });
  });
});

describe('SIGHUP to certkeeper run', () => {
  it('re-reads a good file, and keeps running the old one when the new one is broken', async () => {
    const dir = await fs.mkdtemp(join(work, 'run-'));
    const file = join(dir, 'certkeeper.yml');
    await fs.writeFile(file, yaml(['a']));
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        '--config',
        file,
        'run',
        '--no-check-at-start',
        '--listen',
        `127.0.0.1:${port}`,
      ],
      {
        env: { ...process.env, LOG_FORMAT: 'json', LOG_LEVEL: 'info', CERTKEEPER_TOKEN: TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    const certs = async () =>
      (
        JSON.parse((await simpleRequest(`http://127.0.0.1:${port}/v1/certificates`)).body).certificates as {
          name: string;
        }[]
      ).map((c) => c.name);
    try {
      const up = await pollUntil(
        async () =>
          (await simpleRequest(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200,
        { attempts: 150, intervalMs: 100 },
      );
      expect(up, out).toBe(true);
      expect(await certs()).toEqual(['a']);

      await fs.writeFile(file, yaml(['a', 'b']));
      child.kill('SIGHUP');
      expect(
        await pollUntil(async () => (await certs()).includes('b'), { attempts: 100, intervalMs: 100 }),
        out,
      ).toBe(true);
      expect(out).toMatch(/"event":"config\.reloaded".*"source":"SIGHUP"/);

      await fs.writeFile(file, 'acme: { directoryUrl: [unclosed\n');
      child.kill('SIGHUP');
      expect(
        await pollUntil(async () => /"event":"config\.reload_failed"/.test(out), {
          attempts: 100,
          intervalMs: 100,
        }),
        out,
      ).toBe(true);
      expect(out).toMatch(
        /still running the previous configuration: .*YAML syntax error.*line \d+, column \d+/,
      );
      expect(child.exitCode).toBeNull(); // still running
      expect(await certs()).toEqual(['a', 'b']);
      const metrics = (await simpleRequest(`http://127.0.0.1:${port}/metrics`)).body;
      expect(metrics).toMatch(/^certkeeper_config_last_reload_successful 0$/m);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 60_000);
});
