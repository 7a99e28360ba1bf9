/**
 * Daemon benchmark:
 *   cliIdleRssMb — the same for `certkeeper run` started as users start it (`node dist/cli/main.js run`, YAML configuration,
 *                 JSON logs, ARI on, no forced GC): what a container actually holds. Default and tuned V8/glibc settings.
 *   idleRssMb   — resident memory of a daemon process (API listening, schedule armed) with 1,000 certificates in
 *                 the store, after its start-up check. Measured in a child process running plain JavaScript (this
 *                 file bundled by esbuild, as `npm run build` output would run), not under the tsx loader, whose
 *                 worker thread alone adds ~35 MB.
 *   dueCheckMs  — one due-check pass over 10,000 stored certificates as the daemon runs it: planning each from the
 *                 state kept in memory (wake ticks, API triggers, /readyz, /metrics), median of 5.
 *   reloadMs    — the pass with a full re-read of every state file first (what the twice-daily cron tick does).
 *   loadMs      — the first load at start.
 * The store is seeded quickly: one self-signed certificate and key hard-linked into every live folder, and a state
 * file per certificate; nothing is issued. No network: ARI is off and nothing is due.
 */
import { spawn } from 'node:child_process';
import { promises as fs, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mapLimit } from '../src/concurrency.js';
import { parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { certInfo } from '../src/crypto/pem.js';
import { StateCache } from '../src/daemon/cache.js';
import { createDaemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';

export interface DaemonBench {
  idleRssMb: number;
  /** The same with NODE_OPTIONS=--max-semi-space-size=1 (V8 keeps less young-generation memory resident). */
  idleRssMbSmallYoungGen: number;
  /**
   * `certkeeper run` as users start it (bundled CLI, YAML file, real logger, ARI on, no forced GC), VmRSS one second
   * after the API listens; `tuned` adds NODE_OPTIONS=--max-semi-space-size=1 and MALLOC_ARENA_MAX=2 (Dockerfile).
   */
  cliIdleRssMb?: number;
  cliIdleRssMbTuned?: number;
  /**
   * The same 15 s after the start-up check's job finished instead of 1 s: V8 gives back the pages the job's garbage
   * took once the process has been idle a few seconds (its memory reducer runs ~8 s after the old generation grew),
   * so this is what the idle daemon holds from then on. (daemonload samples "15 s after the requests" likewise.)
   */
  cliIdleRssMbSettled?: number;
  cliIdleRssMbImageSettled?: number;
  /** Plain node on the bin with the Node 22 binary in $CERTKEEPER_NODE22 (it restarts itself: process.execve). */
  cliIdleRssMbNode22?: number;
  cliIdleRssMbNode22Settled?: number;
  /** docker/entrypoint.sh on the Node 22 binary in $CERTKEEPER_NODE22 (the image's Node major), 15 s after. */
  cliIdleRssMbImageNode22Settled?: number;
  /**
   * As the image runs it: docker/entrypoint.sh (V8 flags for `run`: no optimizing/baseline compiler, 1 MiB young
   * generation, single-threaded GC) with the Dockerfile's NODE_OPTIONS and MALLOC_ARENA_MAX. The goal's figure.
   */
  cliIdleRssMbImage?: number;
  dueCheckMs: number;
  reloadMs: number;
  loadMs: number;
  /** 'bundled' (plain node) or 'tsx' (fallback when esbuild is not installed: RSS includes the loader). */
  rssMode: 'bundled' | 'tsx';
  certificates: { idle: number; dueCheck: number };
}

const name = (i: number) => `site-${String(i).padStart(5, '0')}`;

export async function seed(root: string, n: number): Promise<void> {
  // loaded here only, so the daemon child does not carry the x509 library the real daemon does not load
  const { createSelfSigned } = await import('../src/crypto/selfsigned.js');
  const { certPem, keyPem } = await createSelfSigned({
    commonName: 'bench.certkeeper.test',
    altNames: ['bench.certkeeper.test'],
    days: 90,
  });
  const info = certInfo(certPem);
  const shared = join(root, 'shared');
  await fs.mkdir(shared, { recursive: true });
  await fs.writeFile(join(shared, 'cert.pem'), certPem);
  await fs.writeFile(join(shared, 'key.pem'), keyPem, { mode: 0o600 });
  await fs.mkdir(join(root, 'state'), { recursive: true });
  await mapLimit(
    Array.from({ length: n }, (_, i) => i),
    64,
    async (i) => {
      // the layout certkeeper's store writes: archive/<name>/{file}1.pem (hard links to one certificate and key),
      // the version folder .v1 linking them, live/<name>/.current -> .v1 and live/<name>/{file}.pem -> .current
      const live = join(root, 'live', name(i));
      const archive = join(root, 'archive', name(i));
      await fs.mkdir(join(archive, '.v1'), { recursive: true });
      await fs.mkdir(live, { recursive: true });
      const files = {
        cert: 'cert.pem',
        chain: 'cert.pem',
        fullchain: 'cert.pem',
        privkey: 'key.pem',
        combined: 'key.pem',
      };
      for (const [f, from] of Object.entries(files)) {
        await fs.link(join(shared, from), join(archive, `${f}1.pem`));
        await fs.symlink(`../${f}1.pem`, join(archive, '.v1', `${f}.pem`));
        await fs.symlink(`.current/${f}.pem`, join(live, `${f}.pem`));
      }
      await fs.symlink(`../../archive/${name(i)}/.v1`, join(live, '.current'));
      await fs.writeFile(
        join(root, 'state', `${name(i)}.json`),
        `${JSON.stringify(
          {
            name: name(i),
            domains: [`${name(i)}.certkeeper.test`],
            keyType: 'ecdsa-p256',
            serial: info.serial,
            notBefore: info.notBefore.toISOString(),
            notAfter: info.notAfter.toISOString(),
            version: 1,
            lastAttempt: { at: new Date().toISOString(), result: 'success', message: 'seeded' },
          },
          null,
          2,
        )}\n`,
      );
    },
  );
}

function configFor(root: string, n: number): Config {
  return parseConfig(configInput(root, n));
}

function configInput(root: string, n: number) {
  return {
    acme: { directoryUrl: 'http://127.0.0.1:9/directory' },
    storage: { path: root },
    server: { listen: '127.0.0.1:0' },
    certificates: Array.from({ length: n }, (_, i) => ({
      name: name(i),
      domains: [`${name(i)}.certkeeper.test`],
      challenge: { type: 'http-01' as const, webroot: join(root, 'www') },
    })),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Child mode: run the daemon over `root` and print its idle RSS. */
async function child(root: string, n: number): Promise<void> {
  const trace = async (what: string) => {
    if (!process.env.BENCH_TRACE) return;
    (globalThis as { gc?: () => void }).gc?.();
    const [v8, { readFileSync }] = await Promise.all([import('node:v8'), import('node:fs')]);
    const mb = (n: number) => (n / 1048576).toFixed(1);
    const m = process.memoryUsage();
    const spaces = v8
      .getHeapSpaceStatistics()
      .filter((x) => x.space_size > 0)
      .map((x) => `${x.space_name.replace('_space', '')} ${mb(x.space_size)}/${mb(x.space_used_size)}`)
      .join(', ');
    const smaps = readFileSync('/proc/self/smaps_rollup', 'utf8')
      .split('\n')
      .filter((l) => /^(Shared_Clean|Private_Dirty)/.test(l))
      .map((l) => l.replace(/\s+/g, ' '))
      .join(', ');
    process.stderr.write(
      `${what}: rss ${mb(m.rss)} heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} ext ${mb(m.external)} | ${spaces} | ${smaps}\n`,
    );
  };
  await trace('imports');
  const config = configFor(root, n);
  await trace('config parsed');
  const daemon = createDaemon(config, { logger: silentLogger, ari: false });
  await trace('created');
  await daemon.start();
  await trace('started');
  await daemon.listen();
  await trace('listening');
  await daemon.queue.idle();
  await new Promise((r) => setTimeout(r, Number(process.env.BENCH_IDLE_MS || 500)));
  await trace('idle');
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const rss = process.memoryUsage().rss;
  process.stdout.write(`${JSON.stringify({ rss, jobs: daemon.queue.list().length })}\n`);
  await daemon.stop({ graceMs: 1000 });
}

/** Bundles this file to plain ESM beside node_modules (so packages resolve), or undefined without esbuild. */
export async function bundleSelf(): Promise<string | undefined> {
  const self = fileURLToPath(import.meta.url);
  const outdir = join(dirname(self), '..', 'node_modules', '.cache', 'certkeeper-bench');
  try {
    const esbuild = (await import('esbuild')) as typeof import('esbuild');
    await esbuild.build({
      entryPoints: [self, join(dirname(self), '..', 'src', 'cli', 'main.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      target: 'node20',
      // keep dynamic imports lazy (the AWS SDK loads only for route53/acm users), as tsc's output does
      splitting: true,
      outdir,
      entryNames: '[name]',
      logLevel: 'error',
    });
    return join(outdir, 'daemon.js');
  } catch {
    return undefined;
  }
}

async function idleRss(
  root: string,
  n: number,
  nodeFlags: string[] = [],
): Promise<{ mb: number; mode: 'bundled' | 'tsx' }> {
  const bundled = await bundleSelf();
  const args = bundled
    ? ['--expose-gc', ...nodeFlags, bundled]
    : ['--expose-gc', ...nodeFlags, '--import', 'tsx', fileURLToPath(import.meta.url)];
  const p = spawn(process.execPath, [...args, '--child', root, String(n)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: 'silent',
      BENCH_TRACE: process.env.BENCH_TRACE ?? '',
      BENCH_IDLE_MS: process.env.BENCH_IDLE_MS ?? '',
    },
  });
  let out = '';
  p.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  clearTimeout(timer);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (code !== 0 || !line) throw new Error(`daemon child failed (exit ${code}): ${out}`);
  const { rss, jobs } = JSON.parse(line) as { rss: number; jobs: number };
  if (jobs !== 0) throw new Error(`the seeded store was due (${jobs} jobs): the figure would include orders`);
  return { mb: rss / 1024 / 1024, mode: bundled ? 'bundled' : 'tsx' };
}

let built: Promise<string> | undefined;
/** `npm run build` once: dist/ is what the image and `npm install -g` run, lazy imports and all. */
export function builtCli(): Promise<string> {
  built ??= new Promise((resolve, reject) => {
    const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
    const b = spawn('npm', ['run', '--silent', 'build'], { cwd: repo, stdio: 'inherit' });
    b.once('exit', (code) =>
      code === 0
        ? resolve(join(repo, 'dist', 'cli', 'main.js'))
        : reject(new Error(`npm run build exited ${code}`)),
    );
  });
  return built;
}

/**
 * `certkeeper run` exactly as users start it (`node dist/cli/main.js run`, the output of `npm run build`, a YAML configuration of `n` certificates, no forced
 * GC): waits for "API on ..." in its log (and the start-up check's job), reads VmRSS from /proc 1 s and 15 s later,
 * then stops it with SIGTERM.
 */
export async function cliIdleRss(
  root: string,
  n: number,
  env: Record<string, string> = {},
  viaEntrypoint = false,
  node = process.execPath,
): Promise<{ mb: number; settledMb: number } | undefined> {
  if (process.platform !== 'linux') return undefined;
  const main = await builtCli();
  const file = join(root, 'certkeeper.yml');
  const input = configInput(root, n);
  // YAML is a superset of JSON: the configuration file users would write, in its most compact spelling.
  await fs.writeFile(file, JSON.stringify({ ...input, schedule: { cron: '0 3 * * *' } }));
  const entrypoint = join(dirname(fileURLToPath(import.meta.url)), '..', 'docker', 'entrypoint.sh');
  const p = viaEntrypoint
    ? // exec's into node, so the pid is node's
      spawn('/bin/sh', [entrypoint, 'run', '-c', file], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          PATH: `${dirname(node)}:${process.env.PATH}`,
          LOG_FORMAT: 'json',
          CERTKEEPER_MAIN: main,
          ...env,
        },
      })
    : spawn(node, [main, 'run', '-c', file], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { PATH: process.env.PATH, LOG_FORMAT: 'json', ...env },
      });
  const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
  const exited = new Promise<number | null>((r) => p.once('exit', r));
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      p.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        // the start-up check queues a job when ARI is on (one renewalInfo request per certificate, refused here):
        // idle is after it finished
        const queued = out.includes('"event":"job.queued"');
        if (out.includes('"api.listening"') && (!queued || out.includes('"event":"job.finished"'))) resolve();
      });
      void exited.then((code) => reject(new Error(`certkeeper run exited (${code}): ${out.slice(-2000)}`)));
    });
    if (out.includes('"event":"renew.obtaining"'))
      throw new Error('the seeded store was due: the figure would include orders');
    const rss = async () => {
      const status = await fs.readFile(`/proc/${p.pid}/status`, 'utf8');
      return Math.round((Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024) * 10) / 10;
    };
    await new Promise((r) => setTimeout(r, 1000));
    const mb = await rss();
    await new Promise((r) => setTimeout(r, 14_000));
    return { mb, settledMb: await rss() };
  } finally {
    p.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  }
}

export async function benchDaemon(
  opts: { idleCerts?: number; dueCerts?: number } = {},
): Promise<DaemonBench> {
  const idleCerts = opts.idleCerts ?? 1000;
  const dueCerts = opts.dueCerts ?? 10_000;
  const root = await fs.mkdtemp(join(tmpdir(), 'ck-bench-daemon-'));
  try {
    const small = join(root, 'small');
    await seed(small, idleCerts);
    const idle = await idleRss(small, idleCerts);
    const idleSmall = await idleRss(small, idleCerts, ['--max-semi-space-size=1']);
    const cli = await cliIdleRss(small, idleCerts);
    const imageEnv = { NODE_OPTIONS: '--max-semi-space-size=1', MALLOC_ARENA_MAX: '2' };
    const cliTuned = await cliIdleRss(small, idleCerts, imageEnv);
    const cliImage = await cliIdleRss(small, idleCerts, imageEnv, true);
    const node22 = process.env.CERTKEEPER_NODE22;
    const cli22 = node22 ? await cliIdleRss(small, idleCerts, {}, false, node22) : undefined;
    // what the image runs: its entrypoint on Node 22
    const image22 = node22 ? await cliIdleRss(small, idleCerts, imageEnv, true, node22) : undefined;

    const big = join(root, 'big');
    await seed(big, dueCerts);
    const config = configFor(big, dueCerts);
    const cache = new StateCache(new CertStore(big), config);
    let t = performance.now();
    await cache.loadAll();
    const loadMs = performance.now() - t;
    const now = new Date();
    const reloads: number[] = [];
    const passes: number[] = [];
    for (let i = 0; i < 5; i++) {
      t = performance.now();
      const { due } = cache.dueCheck(now);
      passes.push(performance.now() - t);
      if (due.length) throw new Error(`${due.length} seeded certificates were due`);
      t = performance.now();
      await cache.loadAll();
      cache.dueCheck(now);
      reloads.push(performance.now() - t);
    }
    return {
      idleRssMb: Math.round(idle.mb * 10) / 10,
      idleRssMbSmallYoungGen: Math.round(idleSmall.mb * 10) / 10,
      cliIdleRssMb: cli?.mb,
      cliIdleRssMbTuned: cliTuned?.mb,
      cliIdleRssMbImage: cliImage?.mb,
      cliIdleRssMbSettled: cli?.settledMb,
      cliIdleRssMbImageSettled: cliImage?.settledMb,
      cliIdleRssMbNode22: cli22?.mb,
      cliIdleRssMbNode22Settled: cli22?.settledMb,
      cliIdleRssMbImageNode22Settled: image22?.settledMb,
      dueCheckMs: Math.round(median(passes) * 10) / 10,
      reloadMs: Math.round(median(reloads)),
      loadMs: Math.round(loadMs),
      rssMode: idle.mode,
      certificates: { idle: idleCerts, dueCheck: dueCerts },
    };
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

// realpath: the bundled copy lives under node_modules, which may be a symlink (a worktree sharing one)
const isMain = process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1]);
if (isMain) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) await child(process.argv[i + 1]!, Number(process.argv[i + 2]));
  else process.stdout.write(`${JSON.stringify(await benchDaemon(), null, 2)}\n`);
}
