/**
 * The published bin as `npm run build` makes it (scripts/build.mjs into a temporary folder): it runs from its own
 * files, loads a configuration through the worker, and `run` restarts itself with the daemon's memory settings
 * where Node can (process.execve, Node 22.15+; $CERTKEEPER_NODE22 runs the same checks on a Node 22 binary).
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginx, startPebble, verifyChain } from './harness/index.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');
const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
const NODES = [process.execPath, ...(process.env.CERTKEEPER_NODE22 ? [process.env.CERTKEEPER_NODE22] : [])];
let work: string;
let main: string;
let config: string;
/** 1,000 configured certificates, nothing stored: enough start-up work for V8 to grow a young generation it may. */
let bigConfig: string;

beforeAll(async () => {
  // inside the repository, so the packages left in node_modules (AWS SDK, dockerode, ...) resolve as installed
  work = await fs.mkdtemp(join(REPO, 'node_modules', '.ck-build-test-'));
  await run(process.execPath, [join(REPO, 'scripts', 'build.mjs'), '--outdir', join(work, 'dist')], {
    timeout: 60_000,
  });
  main = join(work, 'dist', 'cli', 'main.js');
  config = join(work, 'certkeeper.yml');
  await fs.writeFile(
    config,
    `acme: { directoryUrl: "http://127.0.0.1:9/directory" }
storage: { path: ${JSON.stringify(join(work, 'store'))} }
server: { listen: "127.0.0.1:0" }
certificates: []
`,
  );
  bigConfig = join(work, 'big.yml');
  await fs.writeFile(
    bigConfig,
    JSON.stringify({
      acme: { directoryUrl: 'http://127.0.0.1:9/directory' },
      storage: { path: join(work, 'big-store') },
      server: { listen: '127.0.0.1:0' },
      certificates: Array.from({ length: 1000 }, (_, i) => ({
        name: `site-${i}`,
        domains: [`site-${i}.certkeeper.test`],
        challenge: { type: 'http-01', webroot: join(work, 'www') },
      })),
    }),
  );
}, 90_000);

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** Starts `run` on `file`, waits for the API, gives `probe` its pid and port, then stops it. */
async function withRun<T>(
  node: string,
  file: string,
  env: NodeJS.ProcessEnv,
  probe: (pid: number, port: number) => Promise<T> | T,
): Promise<T> {
  const p = spawn(node, [main, '-c', file, 'run', '--no-check-at-start'], {
    env: { PATH: process.env.PATH, LOG_FORMAT: 'json', NODE_COMPILE_CACHE: join(work, 'cc'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => p.once('exit', r));
  const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
  try {
    let out = '';
    const port = await new Promise<number>((res, rej) => {
      p.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /"event":"api.listening"[^\n]*"port":(\d+)/.exec(out);
        if (m) res(Number(m[1]));
      });
      p.stderr.on('data', (c: Buffer) => {
        out += c.toString();
      });
      void exited.then((code) => rej(new Error(`run exited ${code}: ${out}`)));
    });
    return await probe(p.pid!, port);
  } finally {
    p.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  }
}

/** The argv the `run` process (same pid) runs with once its API listens. */
const daemonArgv = (node: string, env: NodeJS.ProcessEnv = {}) =>
  withRun(node, config, env, (pid) =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean),
  );

/** What /metrics says V8's young generation holds (bytes) once `run` on `file` listens. */
const youngGeneration = (node: string, file: string, env: NodeJS.ProcessEnv = {}) =>
  withRun(node, file, env, async (_pid, port) => {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(metrics)?.[1]);
  });

describe('the bin npm run build makes', () => {
  it.each(NODES)('prints its version and checks a configuration (%s)', async (node) => {
    const v = await run(node, [main, '--version'], { env: { PATH: process.env.PATH } });
    expect(v.stdout.trim()).toBe(VERSION);
    const c = await run(node, [main, '-c', config, 'check-config'], { env: { PATH: process.env.PATH } });
    expect(c.stdout).toContain('valid, 0 certificate(s)');
  });

  it.each(NODES)(
    'writes all of a long status into a pipe read slowly before it exits (%s)',
    async (node) => {
      // one-shot commands exit as soon as main() returns (main.ts exitWhenWritten): the output must all be there
      const p = spawn(node, [main, '-c', bigConfig, 'status', '--json'], {
        env: { PATH: process.env.PATH },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      p.stdout.pause(); // the 64 KiB pipe fills and the writer waits
      await new Promise((r) => setTimeout(r, 300));
      const chunks: Buffer[] = [];
      p.stdout.on('data', (c: Buffer) => chunks.push(c));
      p.stdout.resume();
      const code = await new Promise<number | null>((r) => p.once('close', r));
      expect(code).toBe(0);
      const rows = JSON.parse(Buffer.concat(chunks).toString()) as { name: string; validity: string }[];
      expect(rows).toHaveLength(1000);
      expect(rows.at(-1)).toMatchObject({ name: 'site-999', validity: 'missing' });
    },
    30_000,
  );

  it.each(NODES)(
    '`run` keeps its pid and runs with the daemon settings where Node can execve (%s)',
    async (node) => {
      const { stdout } = await run(node, ['-p', "typeof process.execve === 'function'"]);
      const canExecve = stdout.trim() === 'true';
      const argv = await daemonArgv(node);
      const flags = [
        '--max-semi-space-size=1',
        '--no-opt',
        '--no-sparkplug',
        '--single-threaded-gc',
        '--bytecode-old-age=1',
      ];
      if (canExecve) expect(argv.slice(1, 1 + flags.length)).toEqual(flags);
      else expect(argv.slice(1, 2)).toEqual([main]);
      // opting out leaves the process as started
      expect((await daemonArgv(node, { CERTKEEPER_V8_TUNING: '0' })).slice(1, 2)).toEqual([main]);
    },
    60_000,
  );

  it.each(NODES)(
    "`run` keeps V8's young generation at 1 MiB, restarted or not, after the configuration worker too (%s)",
    async (node) => {
      // 2 semi-spaces of 1 MiB; the flags set while running (no process.execve) survive the worker's isolate
      expect(await youngGeneration(node, bigConfig)).toBeLessThanOrEqual(2 * 1024 * 1024);
      // the same start-up with V8's defaults grows it (else this test would show nothing)
      expect(await youngGeneration(node, bigConfig, { CERTKEEPER_V8_TUNING: '0' })).toBeGreaterThan(
        2 * 1024 * 1024,
      );
    },
    60_000,
  );

  it.each(NODES)(
    'serves its API and all its metrics from the bundle, with the parts it leaves out stubbed (%s)',
    async (node) => {
      // the bundle stubs fastify's inject(), prom-client's Summary and the OpenTelemetry API (scripts/build.mjs)
      const { health, metrics } = await withRun(node, config, {}, async (_pid, port) => ({
        health: await (await fetch(`http://127.0.0.1:${port}/healthz`)).json(),
        metrics: await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
      }));
      expect(health).toEqual({ ok: true });
      for (const series of [
        'process_cpu_user_seconds_total',
        'process_resident_memory_bytes',
        'nodejs_eventloop_lag_seconds',
        'nodejs_gc_duration_seconds_count',
        'nodejs_heap_space_size_used_bytes',
      ])
        expect(metrics).toMatch(new RegExp(`^${series}`, 'm'));
    },
    60_000,
  );

  it("issues a certificate through a real CA with the bundle's own crypto (no @peculiar/x509, asn1js or yaml in it)", async () => {
    const bundle = (
      await Promise.all(
        [
          join(work, 'dist', 'cli', 'certkeeper.js'),
          ...(
            await fs.readdir(join(work, 'dist', 'cli', 'chunks'))
          )
            .filter((f) => f.endsWith('.js'))
            .map((f) => join(work, 'dist', 'cli', 'chunks', f)),
        ].map((f) => fs.readFile(f, 'utf8')),
      )
    ).join('\n');
    // acme-client's crypto module is swapped for src/acme/acme-client-crypto.ts; the yaml package stays outside
    expect(bundle).not.toMatch(/PemConverter|Pkcs10CertificateRequestGenerator|class LineCounter/);
    // fastify's schema compilers stay out too: the API's routes have no schemas
    expect(bundle).not.toMatch(/Ajv|json-schema-traverse/);
    const webroot = join(work, 'www');
    await fs.mkdir(webroot, { recursive: true });
    const nginx = await startNginx({ webroot });
    const pebble = await startPebble({ httpPort: nginx.httpPort });
    try {
      const cfg = join(work, 'issue.yml');
      await fs.writeFile(
        cfg,
        JSON.stringify({
          acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath },
          selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer] },
          storage: { path: join(work, 'issued') },
          certificates: [
            {
              name: 'bundle',
              domains: ['bundle.certkeeper.test', '127.0.0.1'],
              challenge: { type: 'http-01', webroot },
            },
          ],
        }),
      );
      const r = await run(process.execPath, [main, '-c', cfg, 'renew'], {
        env: { PATH: process.env.PATH, LOG_LEVEL: 'warn' },
        timeout: 60_000,
      });
      expect(r.stdout).toMatch(/bundle: issued serial/);
      const fullchain = await fs.readFile(join(work, 'issued', 'live', 'bundle', 'fullchain.pem'), 'utf8');
      expect(verifyChain(fullchain, await pebble.rootPem())).toBe(true);
    } finally {
      await pebble.stop();
      await nginx.stop();
    }
  }, 90_000);
});
