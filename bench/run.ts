/**
 * `npm run bench [-- --count 50 --concurrency 8 --compare-count 50 --no-compare]`
 *
 * 1. Issues N single-name certificates from a local Pebble through the in-process pipeline: certificates/s,
 *    p50/p95 latency per certificate, peak RSS.
 * 2. One `certkeeper renew` from a cold start (built CLI, new process) to files on disk.
 * 3. Where Debian's certbot and lego are installed: the same number of certificates with each, one after
 *    another, against the same Pebble, and the ratios.
 * Further sections (daemon, DNS-01, cluster) run when their modules are present.
 * Everything talks to 127.0.0.1 only. Goals (2-core machine): 50 certificates < 5 s; cold renew < 1.5 s.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.js';
import { renew } from '../src/renew.js';
import { type NginxHandle, type PebbleHandle, startNginx, startPebble } from '../test/harness/index.js';
import { runCertbot, runLego } from './compare.js';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '8' },
    'compare-count': { type: 'string' },
    'no-compare': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const count = Number(args.count);
const concurrency = Number(args.concurrency);
const compareCount = Number(args['compare-count'] ?? count);
const root = join(import.meta.dirname, '..');

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
const fmt = (n: number, d = 2) => n.toFixed(d);
const out = (s: string) => process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  const work = await fs.mkdtemp(join(tmpdir(), 'ck-bench-'));
  await fs.chmod(work, 0o755);
  const webroot = join(work, 'www');
  await fs.mkdir(webroot);
  let nginx: NginxHandle | undefined;
  let pebble: PebbleHandle | undefined;
  const summary: Record<string, string> = {};
  try {
    nginx = await startNginx({ webroot });
    pebble = await startPebble({ httpPort: nginx.httpPort });
    const base = {
      acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath },
      selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer] },
    };

    if (!args.only || args.only === 'issue') {
      // Account registration is a one-time cost: make it before the clock starts, as a long-running service has.
      const storage = join(work, 'inproc');
      const mk = (n: number, prefix: string) =>
        parseConfig({
          ...base,
          storage: { path: storage },
          renewal: { concurrency },
          certificates: Array.from({ length: n }, (_, i) => ({
            name: `${prefix}${i}`,
            domains: [`${prefix}${i}.bench.certkeeper.test`],
            challenge: { type: 'http-01', webroot },
          })),
        });
      await renew(mk(1, 'warm'));
      out(`\n## Issue ${count} single-name certificates, concurrency ${concurrency} (in-process pipeline)`);
      const rssBefore = process.memoryUsage().rss;
      const t0 = performance.now();
      const report = await renew(mk(count, 'c'));
      const seconds = (performance.now() - t0) / 1000;
      const ok = report.results.filter((r) => r.status === 'issued').length;
      const lat = report.results.map((r) => r.durationMs).sort((a, b) => a - b);
      const peakRssMb = process.resourceUsage().maxRSS / 1024;
      out(`issued ${ok}/${count} in ${fmt(seconds)} s = ${fmt(ok / seconds, 1)} certificates/s`);
      out(
        `latency per certificate: p50 ${fmt(pct(lat, 50) / 1000, 3)} s, p95 ${fmt(pct(lat, 95) / 1000, 3)} s`,
      );
      out(`peak RSS ${fmt(peakRssMb, 0)} MB (before the run ${fmt(rssBefore / 2 ** 20, 0)} MB)`);
      for (const r of report.results.filter((x) => x.status === 'failed').slice(0, 5))
        out(`  failed: ${r.name}: ${r.reason}`);
      summary.issue = `${ok}/${count} in ${fmt(seconds)} s (${fmt(ok / seconds, 1)}/s), p50 ${fmt(pct(lat, 50) / 1000, 3)} s, p95 ${fmt(pct(lat, 95) / 1000, 3)} s, peak RSS ${fmt(peakRssMb, 0)} MB`;
      // One after another, like the certbot/lego runs below: the fair per-certificate comparison.
      const seqCount = Math.min(count, 10);
      const seqCfg = mk(seqCount, 's');
      seqCfg.renewal.concurrency = 1;
      const t1 = performance.now();
      const seq = await renew(seqCfg);
      const seqSeconds = (performance.now() - t1) / 1000;
      const seqOk = seq.results.filter((r) => r.status === 'issued').length;
      out(
        `one after another: ${seqOk}/${seqCount} in ${fmt(seqSeconds)} s = ${fmt(seqSeconds / seqOk, 3)} s per certificate`,
      );
      summary.sequential = `${fmt(seqSeconds / seqOk, 3)} s per certificate one after another`;
      summary.perCertCertkeeper = fmt(seqSeconds / seqOk, 3);
    }

    if (!args.only || args.only === 'cold') {
      out('\n## One `certkeeper renew` from a cold start to files on disk (built CLI, new process)');
      spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
      const storage = join(work, 'cold');
      const cfgFile = join(work, 'cold.yml');
      const runOnce = async (name: string) => {
        await fs.writeFile(
          cfgFile,
          JSON.stringify({
            ...base,
            storage: { path: storage },
            certificates: [
              { name, domains: [`${name}.cold.certkeeper.test`], challenge: { type: 'http-01', webroot } },
            ],
          }),
        );
        const t0 = performance.now();
        const r = spawnSync(
          process.execPath,
          [join(root, 'dist', 'cli', 'main.js'), '--config', cfgFile, 'renew'],
          {
            env: { ...process.env, LOG_LEVEL: 'warn' },
            encoding: 'utf8',
          },
        );
        const s = (performance.now() - t0) / 1000;
        const onDisk = existsSync(join(storage, 'live', name, 'fullchain.pem'));
        return { s, ok: r.status === 0 && onDisk, output: r.stdout + r.stderr };
      };
      const first = await runOnce('first'); // includes creating the account key and registering
      const runs = [];
      for (let i = 0; i < 5; i++) runs.push(await runOnce(`cold${i}`));
      const times = runs.map((r) => r.s).sort((a, b) => a - b);
      out(`first run (new account): ${fmt(first.s, 3)} s ${first.ok ? 'ok' : `FAILED\n${first.output}`}`);
      out(
        `with an account: median ${fmt(pct(times, 50), 3)} s, max ${fmt(times.at(-1)!, 3)} s over ${runs.length} runs, all ok: ${runs.every((r) => r.ok)}`,
      );
      summary.cold = `${fmt(pct(times, 50), 3)} s median (first run with account registration ${fmt(first.s, 3)} s)`;
    }

    if (!args['no-compare'] && (!args.only || args.only === 'compare')) {
      out(`\n## certbot and lego, ${compareCount} certificates each, one after another, same Pebble`);
      for (const [tool, run] of [
        ['certbot', runCertbot],
        ['lego', runLego],
      ] as const) {
        const names = Array.from({ length: compareCount }, (_, i) => `${tool}${i}.cmp.certkeeper.test`);
        const res = await run({ pebble, webroot, names, workDir: join(work, tool), timeoutMs: 120_000 });
        if (!res) {
          out(`${tool}: not installed (apt-get install ${tool}) — skipped`);
          continue;
        }
        const per = res.seconds / Math.max(1, res.ok);
        out(`${tool}: ${res.ok}/${compareCount} in ${fmt(res.seconds)} s = ${fmt(per, 3)} s per certificate`);
        for (const e of res.errors.slice(0, 3)) out(`  ${e}`);
        if (summary.perCertCertkeeper) {
          const ratio = per / Number(summary.perCertCertkeeper);
          out(`  certkeeper is ${fmt(ratio, 1)}× faster per certificate (concurrent) than ${tool}`);
          summary[tool] =
            `${fmt(per, 3)} s/certificate (${fmt(ratio, 1)}× certkeeper's per-certificate time)`;
        }
      }
    }

    for (const extra of ['dns01', 'daemon', 'cluster'] as const) {
      if (args.only && args.only !== extra) continue;
      const file = join(import.meta.dirname, `${extra}.ts`);
      if (!existsSync(file)) continue;
      out(`\n## ${extra}`);
      const mod = (await import(file)) as Record<string, (o: unknown) => Promise<unknown>>;
      const fn = mod[{ dns01: 'benchDns01', daemon: 'benchDaemon', cluster: 'benchCluster' }[extra]];
      if (!fn) continue;
      const res = await fn({ pebble, count: 20, work: join(work, extra) });
      out(JSON.stringify(res, null, 2));
      summary[extra] = JSON.stringify(res);
    }
  } finally {
    await pebble?.stop();
    await nginx?.stop();
    await fs.rm(work, { recursive: true, force: true });
  }
  out('\n## Summary');
  for (const [k, v] of Object.entries(summary)) if (k !== 'perCertCertkeeper') out(`${k}: ${v}`);
}

await main();
