/**
 * The lifecycle across processes and crashes, against Pebble + nginx and the real CLI: kill -9 at random moments
 * of forced runs, a daemon started right after a killed CLI, the CLI and the daemon on one store, alerts from
 * `certkeeper renew` (cron) to a local webhook with the daily repeat, and a first boot with the CA down.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { certInfo, keyMatchesCert, splitPemChain } from '../src/crypto/pem.js';
import { createDaemon, type Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';
import {
  type NginxHandle,
  type PebbleHandle,
  pollUntil,
  startNginx,
  startPebble,
  verifyChain,
} from './harness/index.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;
let webroot: string;
let hook: Server;
let hookUrl: string;
let received: Record<string, unknown>[] = [];
const children = new Set<ChildProcess>();
const daemons: Daemon[] = [];

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-lifecycle-'));
  webroot = join(work, 'www');
  await fs.mkdir(webroot);
  nginx = await startNginx({ webroot });
  pebble = await startPebble({ httpPort: nginx.httpPort });
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  for (const d of daemons) await d.stop({ graceMs: 2000 });
  for (const c of children) c.kill('SIGKILL');
  hook?.closeAllConnections();
  await new Promise((r) => hook?.close(r));
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

function input(storage: string, names: string[], extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath, email: 'ops@certkeeper.test' },
    storage: { path: storage },
    selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
    server: { listen: '127.0.0.1:0' },
    schedule: { cron: '0 3 * * *', jitterSeconds: 0 },
    certificates: names.map((name) => ({
      name,
      domains: [`${name}.lifecycle.certkeeper.test`],
      challenge: { type: 'http-01' as const, webroot },
    })),
    ...extra,
  };
}

async function writeConfig(dir: string, cfg: ConfigInput): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = join(dir, 'certkeeper.json');
  await fs.writeFile(file, JSON.stringify(cfg));
  return file;
}

interface Run {
  child: ChildProcess;
  /** stderr so far */
  err(): string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function cli(args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH, LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, done, err: () => stderr };
}

/** Every live set whole: four files, the key opens the certificate, fullchain = cert + chain, chain verifies. */
async function assertLiveWhole(storage: string, name: string): Promise<string> {
  const live = join(storage, 'live', name);
  const [cert, chain, fullchain, privkey] = await Promise.all(
    ['cert', 'chain', 'fullchain', 'privkey'].map((f) => fs.readFile(join(live, `${f}.pem`), 'utf8')),
  );
  expect(keyMatchesCert(privkey!, cert!), `${name}: key matches`).toBe(true);
  expect(fullchain, `${name}: fullchain = cert + chain`).toBe(cert! + chain!);
  expect(splitPemChain(fullchain!).length).toBeGreaterThanOrEqual(1);
  return certInfo(cert!).serial;
}

describe('crashes', () => {
  it('20 kill -9 at random moments of forced runs: the next renew succeeds at once and every live set is whole', async () => {
    const dir = join(work, 'kills');
    const names = ['k1', 'k2'];
    const file = await writeConfig(dir, input(join(dir, 'le'), names));
    const first = await cli(['-c', file, 'renew']).done;
    expect(first.code, first.stdout + first.stderr).toBe(0);
    for (let i = 0; i < 20; i++) {
      const run = cli(['-c', file, 'renew', '--force']);
      // anywhere from start-up to the end of the orders
      await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 1500)));
      run.child.kill('SIGKILL');
      await run.done;
    }
    const after = await cli(['-c', file, 'renew', '--lock-wait', '0']).done;
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(after.stdout).not.toMatch(/busy|is renewing this certificate/);
    for (const n of names) await assertLiveWhole(join(dir, 'le'), n);
    // a renewal that reaches the reload, whatever the kills left behind
    const forced = await cli(['-c', file, 'renew', '--force', '--lock-wait', '0']).done;
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    for (const n of names) {
      const serial = await assertLiveWhole(join(dir, 'le'), n);
      const fullchain = await fs.readFile(join(dir, 'le', 'live', n, 'fullchain.pem'), 'utf8');
      expect(verifyChain(fullchain, await pebble.rootPem())).toBe(true);
      expect((await new CertStore(join(dir, 'le')).readState(n))?.serial).toBe(serial);
    }
  });

  it('a daemon started right after a killed CLI renews at once (the dead holder’s lock is taken over)', async () => {
    const dir = join(work, 'takeover');
    const cfg = input(join(dir, 'le'), ['late']);
    const file = await writeConfig(dir, cfg);
    const run = cli(['-c', file, 'renew']);
    // kill it while it holds the lock, in the middle of its order
    const ordering = await pollUntil(
      async () => run.child.exitCode === null && /renew\.obtaining/.test(run.err()),
      {
        attempts: 300,
        intervalMs: 20,
      },
    );
    run.child.kill('SIGKILL');
    await run.done;
    expect(ordering).toBe(true);
    const store = new CertStore(join(dir, 'le'));
    expect(await store.locker.holder('late')).toBeDefined(); // the dead process's lock is still on disk
    const daemon = createDaemon(parseConfig(cfg), { logger: silentLogger, processMetrics: false });
    daemons.push(daemon);
    await daemon.start();
    await daemon.queue.idle();
    const job = daemon.queue.list().at(-1)!;
    expect(job.results?.[0]).toMatchObject({ name: 'late', status: 'issued' });
    await assertLiveWhole(join(dir, 'le'), 'late');
    await daemon.stop({ graceMs: 2000 });
  });

  it('the CLI and the daemon on one store never alert a failure for a certificate that was issued', async () => {
    received = [];
    const dir = join(work, 'both');
    const cfg = input(join(dir, 'le'), ['shared'], {
      notify: [{ type: 'webhook', url: hookUrl, events: ['failure', 'success'] }],
    });
    const file = await writeConfig(dir, cfg);
    const daemon = createDaemon(parseConfig(cfg), {
      logger: silentLogger,
      processMetrics: false,
      checkAtStart: false,
      token: 'lifecycle-token-0123456789',
    });
    daemons.push(daemon);
    await daemon.start();
    // Both at once: the daemon's job and a CLI run, each forcing an order for the same certificate.
    const run = cli(['-c', file, 'renew', '--force']);
    await pollUntil(async () => /renew\.(obtaining|busy)|lock\.waiting/.test(run.err()), {
      attempts: 300,
      intervalMs: 20,
    });
    daemon.queue.submit({ names: ['shared'], force: true, source: 'api' });
    const [res] = await Promise.all([run.done, daemon.queue.idle()]);
    await daemon.alerts.flush();
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const statuses = daemon.queue.list().flatMap((j) => j.results?.map((r) => r.status) ?? []);
    expect(statuses.every((s) => s === 'issued' || s === 'renewed' || s === 'busy')).toBe(true);
    await pollUntil(async () => received.length > 0, { attempts: 100, intervalMs: 50 });
    expect(received.filter((a) => a.event === 'failure')).toEqual([]);
    expect(received.some((a) => a.event === 'success')).toBe(true);
    const metrics = await daemon.metrics.registry.metrics();
    expect(metrics).not.toMatch(/certkeeper_renewals_total\{name="shared",result="failure"\}/);
    await daemon.stop({ graceMs: 2000 });
  });
});

describe('first boot and alerts from cron', () => {
  it('with the CA down and no deployer, the first run writes the placeholder', async () => {
    const dir = join(work, 'ca-down');
    const cfg = input(join(dir, 'le'), ['boot']);
    cfg.acme = { directoryUrl: 'https://127.0.0.1:1/dir' };
    const file = await writeConfig(dir, cfg);
    const r = await cli(['-c', file, 'renew']).done;
    expect(r.code).toBe(1);
    const live = join(dir, 'le', 'live', 'boot');
    await assertLiveWhole(join(dir, 'le'), 'boot');
    expect(await fs.readFile(join(live, 'fullchain.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
    const status = JSON.parse((await cli(['-c', file, 'status', '--json']).done).stdout) as {
      name: string;
      validity: string;
      ready: boolean;
    }[];
    expect(status[0]).toMatchObject({ name: 'boot', validity: 'placeholder', ready: false });
  });

  it('renew from cron sends a failure alert to the webhook, and repeats it daily only', async () => {
    received = [];
    const dir = join(work, 'cron');
    const cfg = input(join(dir, 'le'), ['cron'], {
      notify: [{ type: 'webhook', url: hookUrl, events: ['failure', 'success'] }],
    });
    cfg.acme = { directoryUrl: 'https://127.0.0.1:1/dir' };
    const file = await writeConfig(dir, cfg);
    for (let i = 0; i < 3; i++) expect((await cli(['-c', file, 'renew']).done).code).toBe(1);
    expect(received.map((a) => a.event)).toEqual(['failure']);
    expect(received[0]).toMatchObject({ certificate: 'cron', code: expect.stringMatching(/^CK_ERR_/) });
    expect(received[0]?.hint).toBeTruthy();
    // a day later (as the state remembers it) the same failure is told again
    const store = new CertStore(join(dir, 'le'));
    const st = await store.readState('cron');
    const dayAgo = new Date(Date.now() - 86_400_000 - 60_000).toISOString();
    await store.updateState('cron', { alerts: { failure: { ...st!.alerts!.failure!, at: dayAgo } } });
    expect((await cli(['-c', file, 'renew']).done).code).toBe(1);
    expect(received.map((a) => a.event)).toEqual(['failure', 'failure']);
  });
});
