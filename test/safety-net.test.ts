/**
 * Checks that catch what a mutation would otherwise slip through: a lock that only works inside one process,
 * renew() without a lock, log redaction removed, a daemon that listens everywhere without a token, a token compare
 * that is case-insensitive or not constant-time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as nodeCrypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { createDaemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { renew } from '../src/renew.js';
import { CertStore } from '../src/store/store.js';

vi.mock('node:crypto', async (importOriginal) => {
  const orig = await importOriginal<typeof import('node:crypto')>();
  return { ...orig, timingSafeEqual: vi.fn(orig.timingSafeEqual) };
});

const ROOT = join(import.meta.dirname, '..');
let work: string;
let ca: Server;
let caUrl: string;
let caRequests = 0;
const children: ChildProcess[] = [];

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-safety-'));
  ca = createServer((_req, res) => {
    caRequests++;
    res.writeHead(403, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:unauthorized', detail: 'refused' }));
  });
  await new Promise<void>((r) => ca.listen(0, '127.0.0.1', r));
  caUrl = `http://127.0.0.1:${(ca.address() as AddressInfo).port}/dir`;
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  ca?.closeAllConnections();
  await new Promise((r) => ca?.close(r));
  await fs.rm(work, { recursive: true, force: true });
});

function holdLock(storage: string, name: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'test/helpers/hold-lock.ts'), storage, name],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('lock holder did not start')), 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('locked')) {
        clearTimeout(timer);
        resolve(child);
      } else if (out.includes('busy')) {
        clearTimeout(timer);
        reject(new Error('lock holder found the lock busy'));
      }
    });
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
}

describe('certificate locks across processes', () => {
  it('a lock held by another process is busy, names its holder, and is taken over at once when it is killed', async () => {
    const storage = join(work, 'lock');
    const store = new CertStore(storage);
    const child = await holdLock(storage, 'web');
    expect(await store.locker.tryLock('web')).toBeUndefined();
    expect(await store.locker.holder('web')).toMatchObject({ pid: child.pid });
    await expect(store.locker.lock('web', { waitMs: 300 })).rejects.toMatchObject({
      kind: 'lock',
      code: 'CK_ERR_LOCKED',
      message: expect.stringContaining(`pid ${child.pid}`),
    });
    // other certificates are not affected
    const other = await store.locker.tryLock('api');
    expect(other).toBeDefined();
    await other!.release();

    await killed(child);
    // no stale period: the holder is gone, so the lock is ours now
    const lock = await store.locker.tryLock('web');
    expect(lock).toBeDefined();
    expect(lock!.lost.aborted).toBe(false);
    // and now the other process cannot have it
    await expect(holdLock(storage, 'web')).rejects.toThrow(/busy/);
    await lock!.release();
  });

  it('renew() takes the lock: while another process holds it, nothing is ordered', async () => {
    const storage = join(work, 'renew-lock');
    const config = parseConfig({
      acme: { directoryUrl: caUrl },
      storage: { path: storage },
      certificates: [
        { name: 'web', domains: ['web.certkeeper.test'], challenge: { type: 'http-01', webroot: work } },
      ],
    });
    const child = await holdLock(storage, 'web');
    const before = caRequests;
    const report = await renew(config, { force: true });
    expect(report.results[0]?.error).toMatchObject({ code: 'CK_ERR_LOCKED' });
    expect(caRequests).toBe(before);
    await killed(child);
    // the holder died: the next run goes ahead at once (and reaches the CA, which refuses it)
    const again = await renew(config, { force: true });
    expect(again.results[0]?.error?.code).not.toBe('CK_ERR_LOCKED');
    expect(caRequests).toBeGreaterThan(before);
  });
});

describe('the daemon and a lock held by another process', () => {
  it('is neither success nor failure, and the daemon checks again as soon as the holder lets go', async () => {
    const storage = join(work, 'daemon-busy');
    const hook: Record<string, unknown>[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hook.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const config = parseConfig({
      acme: { directoryUrl: caUrl },
      storage: { path: storage },
      notify: [
        {
          type: 'webhook',
          url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/h`,
          events: ['failure', 'success'],
        },
      ],
      certificates: [
        { name: 'held', domains: ['held.certkeeper.test'], challenge: { type: 'http-01', webroot: work } },
      ],
    });
    const child = await holdLock(storage, 'held');
    const daemon = createDaemon(config, {
      logger: silentLogger,
      processMetrics: false,
      notifyRetryDelaysMs: [],
    });
    try {
      const before = caRequests;
      await daemon.start();
      await daemon.queue.idle();
      expect(daemon.queue.list()[0]?.results?.[0]).toMatchObject({ name: 'held', status: 'busy' });
      expect(daemon.queue.list()[0]?.state).toBe('succeeded');
      expect(caRequests).toBe(before);
      await daemon.alerts.flush();
      expect(hook).toEqual([]);
      const metrics = await daemon.metrics.registry.metrics();
      expect(metrics).not.toMatch(/certkeeper_renewals_total\{name="held",result="failure"\}/);
      expect(await new CertStore(storage).readState('held')).toBeUndefined();

      await killed(child);
      // no tick, no API call: the daemon notices the lock is free and runs the certificate again
      const ran = await pollUntilTrue(() => daemon.queue.list().length >= 2, 15_000);
      expect(ran).toBe(true);
      await daemon.queue.idle();
      expect(daemon.queue.list()[0]?.results?.[0]?.status).not.toBe('busy');
      expect(caRequests).toBeGreaterThan(before);
    } finally {
      await daemon.stop({ graceMs: 1000 });
      receiver.closeAllConnections();
      await new Promise((r) => receiver.close(r));
    }
  });
});

async function pollUntilTrue(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return cond();
}

describe('log redaction (the loggers the CLI and the daemon use)', () => {
  for (const format of ['json', 'pretty']) {
    it(`never writes keys, tokens or HMAC keys (${format})`, async () => {
      const script = `
        const { makeLogger } = await import(${JSON.stringify(join(ROOT, 'src/cli/logger.ts'))});
        for (const fd of [1, 2]) {
          const log = await makeLogger({ fd });
          log.info({ keyPem: '-----BEGIN PRIVATE KEY-----SECRET1', eab: { hmacKey: 'SECRET2' }, token: 'SECRET3',
            req: { headers: { authorization: 'Bearer SECRET4' } }, deploy: { keyPem: 'SECRET5' },
            credentials: { secretAccessKey: 'SECRET6' } }, 'hello');
        }`;
      const out = await new Promise<string>((resolve) => {
        const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
          cwd: ROOT,
          env: { ...process.env, LOG_FORMAT: format, LOG_LEVEL: 'info' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let s = '';
        c.stdout.on('data', (d) => (s += d));
        c.stderr.on('data', (d) => (s += d));
        c.on('close', () => resolve(s));
      });
      expect(out.match(/hello/g)).toHaveLength(2);
      expect(out).not.toContain('PRIVATE KEY');
      expect(out).not.toMatch(/SECRET\d/);
    });
  }
});

describe('the daemon API', () => {
  const TOKEN = 'safety-token-0123456789abcdef';
  const config = () =>
    parseConfig({
      acme: { directoryUrl: caUrl },
      storage: { path: join(work, 'daemon') },
      certificates: [
        { name: 'a', domains: ['a.certkeeper.test'], challenge: { type: 'http-01', webroot: work } },
      ],
    });

  it('refuses to listen beyond loopback without a token, through Daemon.listen itself', async () => {
    const daemon = createDaemon(config(), {
      logger: silentLogger,
      checkAtStart: false,
      processMetrics: false,
    });
    await daemon.start();
    try {
      await expect(daemon.listen('0.0.0.0:0')).rejects.toMatchObject({ code: 'CK_ERR_NO_TOKEN' });
      await expect(daemon.listen(':0')).rejects.toMatchObject({ code: 'CK_ERR_NO_TOKEN' });
      expect(daemon.app!.server.listening).toBe(false);
      const { port } = await daemon.listen('127.0.0.1:0');
      expect(port).toBeGreaterThan(0);
    } finally {
      await daemon.stop({ graceMs: 1000 });
    }
  });

  it('compares the token exactly (case matters) and in constant time', async () => {
    const daemon = createDaemon(config(), {
      logger: silentLogger,
      token: TOKEN,
      checkAtStart: false,
      processMetrics: false,
    });
    await daemon.start();
    try {
      const post = (authorization: string) =>
        daemon.app!.inject({ method: 'POST', url: '/v1/renew', headers: { authorization }, payload: {} });
      const spy = vi.mocked(nodeCrypto.timingSafeEqual);
      spy.mockClear();
      expect((await post(`Bearer ${TOKEN.toUpperCase()}`)).statusCode).toBe(401);
      expect((await post(`Bearer ${TOKEN.replace('s', 'S')}`)).statusCode).toBe(401);
      // every check went through the constant-time compare, on equal-length inputs
      expect(spy.mock.calls.length).toBeGreaterThanOrEqual(2);
      for (const [a, b] of spy.mock.calls) expect((a as Buffer).length).toBe((b as Buffer).length);
      spy.mockClear();
      expect((await post(`Bearer ${TOKEN}`)).statusCode).toBe(202);
      expect(spy).toHaveBeenCalled();
      await daemon.queue.idle();
    } finally {
      await daemon.stop({ graceMs: 1000 });
    }
  });
});
