/**
 * Whole-process benchmarks, what the goals are stated in:
 *
 *   floor      — bench/floor.mjs (raw acme-client, N in flight, 20 ms polling, no config/store/checks) against
 *                `certkeeper renew` (the bin `npm run build` makes, a YAML configuration, the same in-flight count),
 *                same Pebble, same webroot through nginx, ECDSA P-256, rounds alternating between the two: 50 new
 *                certificates, and one certificate from a cold process to files on disk. Both reuse an account
 *                registered before the clock starts.
 *   cli        — `certkeeper status` and `check-config` over 1,000 stored certificates; load + validate + plan of
 *                10,000 configured certificates; `status --json` over 10,000.
 *   daemonLoad — `certkeeper run` with 1,000 certificates as users start it: RSS and V8 heap sampled from /proc and
 *                /metrics while it serves 1,000 API requests (and 15 s after them) and renews 100 certificates through
 *                Pebble.
 *
 * Every figure is the wall time of a whole child process (spawn to exit), median of several runs. Node is the one
 * running this file; with CERTKEEPER_NODE22 set to a Node 22 binary the process figures are repeated on it (the
 * compile cache is a Node 22 feature: its cache folder is made fresh and filled by one unmeasured run).
 * Nothing here asserts anything about time.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { collectStatus } from '../src/cli/status.js';
import { loadConfig } from '../src/config/load.js';
import type { PebbleHandle } from '../test/harness/index.js';
import { builtCli, seed } from './daemon.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const floorScript = join(repo, 'bench', 'floor.mjs');

export interface Ctx {
  pebble: PebbleHandle;
  /** nginx serves it at /.well-known/acme-challenge/ on httpPort, where Pebble validates. */
  webroot: string;
  httpPort: number;
  work: string;
  /** node binaries to run the processes with: [label, path] */
  nodes: [string, string][];
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r3 = (n: number) => Math.round(n * 1000) / 1000;

interface Run {
  seconds: number;
  code: number | null;
  out: string;
}

export function timeProcess(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 180_000,
): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const add = (b: Buffer) => {
      if (out.length < 200_000) out += b.toString();
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ seconds: (performance.now() - t0) / 1000, code, out });
    });
  });
}

const baseEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  LANG: 'C.UTF-8',
  ...extra,
});

/** Node 22's compile cache in a new folder of its own (the caller fills it with one unmeasured run). */
async function compileCacheEnv(work: string, label: string): Promise<Record<string, string>> {
  const dir = join(work, `compile-cache-${label}`);
  await fs.rm(dir, { recursive: true, force: true });
  return { NODE_COMPILE_CACHE: dir };
}

export interface FloorFigures {
  node: string;
  concurrency: number;
  batch: {
    count: number;
    floorS: number[];
    certkeeperS: number[];
    floor: number;
    certkeeper: number;
    ratio: number;
  };
  cold: { floorS: number[]; certkeeperS: number[]; floor: number; certkeeper: number; ratio: number };
  failures: string[];
}

/** floor vs `certkeeper renew`, `rounds` alternating rounds of `count` new certificates, then `coldRuns` single ones. */
export async function benchFloor(
  ctx: Ctx,
  opts: { count: number; concurrency: number; rounds: number; coldRuns: number },
): Promise<FloorFigures[]> {
  const main = await builtCli();
  const results: FloorFigures[] = [];
  for (const [label, node] of ctx.nodes) {
    const slug = `n${label.replace(/\D+/g, '-').replace(/^-|-$/g, '')}`;
    const dir = join(ctx.work, `floor-${slug}`);
    await fs.mkdir(dir, { recursive: true });
    const storage = join(dir, 'certkeeper');
    const floorOut = join(dir, 'floor-out');
    const floorAccount = join(dir, 'floor-account');
    const cc = await compileCacheEnv(dir, slug);
    const failures: string[] = [];
    const floorEnv = baseEnv({ NODE_EXTRA_CA_CERTS: ctx.pebble.caBundlePath });
    const ckEnv = baseEnv({ LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...cc });
    let seq = 0;
    const names = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => `${tag}${seq}-${i}.${slug}.floor.certkeeper.test`);

    const runFloor = async (list: string[]) => {
      const r = await timeProcess(
        node,
        [
          floorScript,
          '--directory',
          ctx.pebble.directoryUrl,
          '--webroot',
          ctx.webroot,
          '--out',
          floorOut,
          '--account',
          floorAccount,
          '--concurrency',
          String(opts.concurrency),
          '--names',
          list.join(','),
        ],
        floorEnv,
      );
      const ok = r.code === 0 && list.every((n) => existsSync(join(floorOut, n, 'fullchain.pem')));
      if (!ok) failures.push(`floor (${list.length}): exit ${r.code}: ${r.out.slice(-500)}`);
      return r.seconds;
    };
    const runCertkeeper = async (list: string[]) => {
      const cfg = join(dir, `ck-${seq}.yml`);
      await fs.writeFile(
        cfg,
        stringify({
          acme: { directoryUrl: ctx.pebble.directoryUrl, caBundle: ctx.pebble.caBundlePath },
          selfCheck: { httpPort: ctx.httpPort, resolvers: [ctx.pebble.dnsServer] },
          storage: { path: storage },
          renewal: { concurrency: opts.concurrency },
          certificates: list.map((d, i) => ({
            name: `c${seq}-${i}`,
            domains: [d],
            challenge: { type: 'http-01', webroot: ctx.webroot },
          })),
        }),
      );
      const r = await timeProcess(node, [main, '-c', cfg, 'renew'], ckEnv);
      const ok =
        r.code === 0 &&
        list.every((_, i) => existsSync(join(storage, 'live', `c${seq}-${i}`, 'fullchain.pem')));
      if (!ok) failures.push(`certkeeper (${list.length}): exit ${r.code}: ${r.out.slice(-500)}`);
      return r.seconds;
    };

    // Before the clock: both register their account; certkeeper's run also fills Node 22's compile cache.
    seq++;
    await runFloor(names(1, 'warm'));
    await runCertkeeper(names(1, 'warm'));

    const batchFloor: number[] = [];
    const batchCk: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      seq++;
      // alternate who goes first, so neither always meets a warmer Pebble
      if (r % 2 === 0) {
        batchFloor.push(await runFloor(names(opts.count, 'f')));
        batchCk.push(await runCertkeeper(names(opts.count, 'k')));
      } else {
        batchCk.push(await runCertkeeper(names(opts.count, 'k')));
        batchFloor.push(await runFloor(names(opts.count, 'f')));
      }
    }
    const coldFloor: number[] = [];
    const coldCk: number[] = [];
    for (let r = 0; r < opts.coldRuns; r++) {
      seq++;
      if (r % 2 === 0) {
        coldFloor.push(await runFloor(names(1, 'cf')));
        coldCk.push(await runCertkeeper(names(1, 'ck')));
      } else {
        coldCk.push(await runCertkeeper(names(1, 'ck')));
        coldFloor.push(await runFloor(names(1, 'cf')));
      }
    }
    const fig = (f: number[], k: number[]) => ({
      floorS: f.map(r3),
      certkeeperS: k.map(r3),
      floor: r3(median(f)),
      certkeeper: r3(median(k)),
      // a run that failed has no figure
      ratio: failures.length ? Number.NaN : Math.round((median(k) / median(f)) * 100) / 100,
    });
    results.push({
      node: label,
      concurrency: opts.concurrency,
      batch: { count: opts.count, ...fig(batchFloor, batchCk) },
      cold: fig(coldFloor, coldCk),
      failures,
    });
  }
  return results;
}

export interface CliFigures {
  node: string;
  /** medians of whole processes, seconds */
  status1k: number;
  checkConfig1k: number;
  status1kJsonConfig: number;
  checkConfig1kJsonConfig: number;
  statusJson10k: number;
  failures: string[];
}

export interface LoadPlanFigures {
  /** in this process, 10,000 certificates: readFile + parse + validate */
  load10kMs: number;
  load10kYamlMs: number;
  /** read every state file and live leaf, plan each */
  plan10kMs: number;
}

const certName = (i: number) => `site-${String(i).padStart(5, '0')}`;

function configObject(root: string, n: number) {
  return {
    acme: { directoryUrl: 'http://127.0.0.1:9/directory' },
    storage: { path: root },
    certificates: Array.from({ length: n }, (_, i) => ({
      name: certName(i),
      domains: [`${certName(i)}.certkeeper.test`],
      challenge: { type: 'http-01', webroot: join(root, 'www') },
    })),
  };
}

/** Seeds `root` with n stored certificates and writes certkeeper.yml (YAML) and certkeeper.json beside it. */
export async function seedWithConfig(root: string, n: number): Promise<{ yaml: string; json: string }> {
  await seed(root, n);
  const cfg = configObject(root, n);
  const yaml = join(root, 'certkeeper.yml');
  const json = join(root, 'certkeeper.json');
  await fs.writeFile(yaml, stringify(cfg));
  await fs.writeFile(json, JSON.stringify(cfg, null, 2));
  return { yaml, json };
}

export async function benchCli(ctx: Pick<Ctx, 'work' | 'nodes'>, runs = 7): Promise<CliFigures[]> {
  const main = await builtCli();
  const small = join(ctx.work, 'cli-1k');
  const big = join(ctx.work, 'cli-10k');
  const s = await seedWithConfig(small, 1000);
  const b = await seedWithConfig(big, 10_000);
  const out: CliFigures[] = [];
  for (const [label, node] of ctx.nodes) {
    const env = baseEnv({
      LOG_LEVEL: 'warn',
      ...(await compileCacheEnv(ctx.work, `cli-${label.replace(/\W+/g, '-')}`)),
    });
    const failures: string[] = [];
    const time = async (args: string[], n = runs) => {
      await timeProcess(node, [main, ...args], env); // fills the compile cache; page cache warm
      const xs: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = await timeProcess(node, [main, ...args], env);
        if (r.code !== 0) failures.push(`${args.join(' ')}: exit ${r.code}: ${r.out.slice(-300)}`);
        xs.push(r.seconds);
      }
      return r3(median(xs));
    };
    out.push({
      node: label,
      status1k: await time(['-c', s.yaml, 'status']),
      checkConfig1k: await time(['-c', s.yaml, 'check-config']),
      status1kJsonConfig: await time(['-c', s.json, 'status']),
      checkConfig1kJsonConfig: await time(['-c', s.json, 'check-config']),
      statusJson10k: await time(['-c', b.json, 'status', '--json'], 3),
      failures,
    });
  }
  return out;
}

/** In this process (the code, not the start-up): 10,000 configured certificates loaded, validated, planned. */
export async function benchLoadPlan(work: string): Promise<LoadPlanFigures> {
  const big = join(work, 'cli-10k');
  if (!existsSync(join(big, 'certkeeper.json'))) await seedWithConfig(big, 10_000);
  const json = join(big, 'certkeeper.json');
  const yaml = join(big, 'certkeeper.yml');
  const loads: number[] = [];
  const yamlLoads: number[] = [];
  const plans: number[] = [];
  for (let i = 0; i < 5; i++) {
    let t = performance.now();
    const config = loadConfig(json, {});
    loads.push(performance.now() - t);
    t = performance.now();
    loadConfig(yaml, {});
    yamlLoads.push(performance.now() - t);
    t = performance.now();
    const rows = await collectStatus(config);
    plans.push(performance.now() - t);
    if (rows.length !== 10_000 || rows.some((r) => r.plan?.due)) throw new Error('the seeded store was due');
  }
  return {
    load10kMs: Math.round(median(loads)),
    load10kYamlMs: Math.round(median(yamlLoads)),
    plan10kMs: Math.round(median(plans)),
  };
}

export interface MemorySample {
  at: string;
  rssMb: number;
  heapUsedMb?: number;
  heapTotalMb?: number;
}

export interface DaemonLoadFigures {
  node: string;
  how: 'bin' | 'entrypoint';
  certificates: number;
  samples: MemorySample[];
  apiRequests: number;
  renewed: number;
  renewFailed: number;
  /** Lowest sample of renewals 60-100 (and 2 s later) minus lowest of renewals 10-50: growth of the live size. */
  rssGrowthOverRenewalsMb: number;
  heapGrowthOverRenewalsMb: number;
  /** lowest sample during/after the 1,000 requests minus idle */
  rssGrowthOverApiMb: number;
  heapGrowthOverApiMb: number;
  /** the sample 15 s after the requests (the daemon idle) minus idle: what the requests left resident */
  rssKeptAfterApiMb: number;
  heapKeptAfterApiMb: number;
  /** 15 s idle after renewal 100 minus 15 s idle after renewal 10: what 90 renewals left resident */
  rssKeptOverRenewalsMb: number;
  heapKeptOverRenewalsMb: number;
  failures: string[];
}

const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

/**
 * `certkeeper run` with `n` stored certificates (not due) against Pebble, as users start it: plain node on the bin,
 * or docker/entrypoint.sh (the image's V8 flags, NODE_OPTIONS and MALLOC_ARENA_MAX). Samples VmRSS from /proc and
 * the V8 heap from /metrics: idle, after 1,000 API requests and 15 s later, after each of 10 forced renewals of 10
 * certificates, 15 s after the first 10 and 15 s after the last. "No growth" is read on the idle samples (V8 gives
 * an allocation burst back once idle: its memory reducer); the samples during the work show the working size.
 */
export async function benchDaemonLoad(
  ctx: Ctx,
  how: 'bin' | 'entrypoint',
  node: [string, string],
  n = 1000,
): Promise<DaemonLoadFigures> {
  const main = await builtCli();
  const root = join(ctx.work, `daemon-load-${how}-${node[0].replace(/\W+/g, '-')}`);
  await seed(root, n);
  const file = join(root, 'certkeeper.yml');
  await fs.writeFile(
    file,
    stringify({
      acme: { directoryUrl: ctx.pebble.directoryUrl, caBundle: ctx.pebble.caBundlePath },
      selfCheck: { httpPort: ctx.httpPort, resolvers: [ctx.pebble.dnsServer] },
      storage: { path: root },
      server: { listen: '127.0.0.1:0' },
      schedule: { cron: '0 3 * * *' },
      certificates: Array.from({ length: n }, (_, i) => ({
        name: certName(i),
        domains: [`${certName(i)}.certkeeper.test`],
        challenge: { type: 'http-01', webroot: ctx.webroot },
      })),
    }),
  );
  const env = {
    ...baseEnv({ LOG_FORMAT: 'json', LOG_LEVEL: 'info' }),
    ...(how === 'entrypoint'
      ? {
          PATH: `${dirname(node[1])}:${process.env.PATH}`,
          CERTKEEPER_MAIN: main,
          NODE_OPTIONS: '--max-semi-space-size=1',
          MALLOC_ARENA_MAX: '2',
        }
      : {}),
  };
  const p =
    how === 'entrypoint'
      ? spawn('/bin/sh', [join(repo, 'docker', 'entrypoint.sh'), 'run', '-c', file], {
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(node[1], [main, 'run', '-c', file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => p.once('exit', r));
  const killer = setTimeout(() => p.kill('SIGKILL'), 300_000);
  const failures: string[] = [];
  let log = '';
  p.stderr.on('data', (c: Buffer) => {
    if (log.length < 100_000) log += c.toString();
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      p.stdout.on('data', (c: Buffer) => {
        buf += c.toString();
        for (;;) {
          const nl = buf.indexOf('\n');
          if (nl < 0) break;
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.includes('"api.listening"')) resolve((JSON.parse(line) as { port: number }).port);
        }
      });
      void exited.then((code) => reject(new Error(`certkeeper run exited (${code}): ${log.slice(-1000)}`)));
    });
    const base = `http://127.0.0.1:${port}`;
    const samples: MemorySample[] = [];
    const sample = async (at: string) => {
      const status = await fs.readFile(`/proc/${p.pid}/status`, 'utf8');
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const gauge = (name: string) => {
        const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics);
        return m ? mb(Number(m[1])) : undefined;
      };
      samples.push({
        at,
        rssMb: mb(rssKb * 1024),
        heapUsedMb: gauge('nodejs_heap_size_used_bytes'),
        heapTotalMb: gauge('nodejs_heap_size_total_bytes'),
      });
    };
    await new Promise((r) => setTimeout(r, 1500));
    await sample('idle');
    const paths = ['/healthz', '/readyz', '/v1/certificates', '/metrics', '/v1/jobs'];
    let apiRequests = 0;
    for (let i = 0; i < 1000; i++) {
      const res = await fetch(`${base}${paths[i % paths.length]}`);
      await res.arrayBuffer();
      if (res.status >= 500) failures.push(`${paths[i % paths.length]}: ${res.status}`);
      apiRequests++;
      if (i === 499) await sample('after 500 API requests');
    }
    await sample('after 1,000 API requests');
    // What stays: V8 gives pages back once the daemon has been idle a while (its memory reducer), not at once.
    await new Promise((r) => setTimeout(r, 15_000));
    await sample('15 s after the requests');
    let renewed = 0;
    let renewFailed = 0;
    for (let j = 0; j < 10; j++) {
      const names = Array.from({ length: 10 }, (_, i) => certName(j * 10 + i));
      const res = await fetch(`${base}/v1/renew`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ names, force: true }),
      });
      const { jobId } = (await res.json()) as { jobId: string };
      for (let k = 0; k < 1200; k++) {
        const job = (await (await fetch(`${base}/v1/jobs/${jobId}`)).json()) as {
          state: string;
          results?: { status: string; reason?: string; name: string }[];
        };
        if (job.state !== 'queued' && job.state !== 'running') {
          for (const r of job.results ?? []) {
            if (r.status === 'renewed' || r.status === 'issued') renewed++;
            else {
              renewFailed++;
              failures.push(`${r.name}: ${r.status} ${r.reason ?? ''}`);
            }
          }
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await sample(`after ${(j + 1) * 10} renewals`);
      if (j === 0) {
        // the settled size once acme-client and the renewal path are loaded: what 90 more renewals must not grow
        await new Promise((r) => setTimeout(r, 15_000));
        await sample('15 s after the first 10 renewals');
      }
    }
    await new Promise((r) => setTimeout(r, 2000));
    await sample('2 s later');
    await new Promise((r) => setTimeout(r, 13_000));
    await sample('15 s after the 100 renewals');
    // The heap is a sawtooth between collections: compare the lowest sample of the first half of the renewals
    // (acme-client is loaded by then) with the lowest of the second half and after — the live size, not garbage.
    const renewals = samples.filter((x) => x.at.endsWith('renewals') || x.at === '2 s later');
    const low = (xs: MemorySample[], k: 'rssMb' | 'heapUsedMb') =>
      Math.min(...xs.map((x) => x[k] ?? Number.NaN));
    const firstHalf = renewals.slice(0, 5);
    const secondHalf = renewals.slice(5);
    const before = samples.filter((x) => x.at === 'idle');
    const api = samples.filter((x) => x.at.includes('API'));
    const kept = samples.filter((x) => x.at === '15 s after the requests');
    const settled10 = samples.filter((x) => x.at === '15 s after the first 10 renewals');
    const settled100 = samples.filter((x) => x.at === '15 s after the 100 renewals');
    const d = (a: number, b: number) => Math.round((b - a) * 10) / 10;
    return {
      node: node[0],
      how,
      certificates: n,
      samples,
      apiRequests,
      renewed,
      renewFailed,
      rssGrowthOverRenewalsMb: d(low(firstHalf, 'rssMb'), low(secondHalf, 'rssMb')),
      heapGrowthOverRenewalsMb: d(low(firstHalf, 'heapUsedMb'), low(secondHalf, 'heapUsedMb')),
      rssGrowthOverApiMb: d(low(before, 'rssMb'), low(api, 'rssMb')),
      heapGrowthOverApiMb: d(low(before, 'heapUsedMb'), low(api, 'heapUsedMb')),
      rssKeptAfterApiMb: d(low(before, 'rssMb'), low(kept, 'rssMb')),
      heapKeptAfterApiMb: d(low(before, 'heapUsedMb'), low(kept, 'heapUsedMb')),
      rssKeptOverRenewalsMb: d(low(settled10, 'rssMb'), low(settled100, 'rssMb')),
      heapKeptOverRenewalsMb: d(low(settled10, 'heapUsedMb'), low(settled100, 'heapUsedMb')),
      failures: failures.slice(0, 10),
    };
  } finally {
    p.kill('SIGTERM');
    await exited;
    clearTimeout(killer);
  }
}
