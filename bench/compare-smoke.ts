/**
 * By hand: `node --import tsx bench/compare-smoke.ts [count]` — starts Pebble + nginx, lets certbot and lego issue
 * `count` (default 2) single-name certificates each, prints seconds per certificate, stops everything.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx } from '../test/harness/nginx.js';
import { startPebble } from '../test/harness/pebble.js';
import { type CompareResult, runCertbot, runLego } from './compare.js';

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 2);
  const work = await mkdtemp(join(tmpdir(), 'ck-compare-'));
  const webroot = join(work, 'webroot');
  await mkdir(join(webroot, '.well-known', 'acme-challenge'), { recursive: true });
  const pebble = await startPebble();
  const nginx = await startNginx({ webroot, httpPort: pebble.httpPort });
  try {
    const show = (r: CompareResult | undefined, label: string) => {
      if (!r) {
        console.log(`${label}: not installed`);
        return;
      }
      const per = r.ok > 0 ? (r.seconds / (r.ok + r.failed)).toFixed(2) : 'n/a';
      console.log(`${label}: ok=${r.ok} failed=${r.failed} total=${r.seconds.toFixed(2)}s per-cert=${per}s`);
      console.log(
        `  each: ${r.perName.map((n) => `${n.seconds.toFixed(2)}s${n.ok ? '' : ' (failed)'}`).join(', ')}`,
      );
      for (const e of r.errors) console.log(`  ${e}`);
    };
    for (const tool of ['certbot', 'lego'] as const) {
      const names = Array.from({ length: count }, (_, i) => `${tool}${i + 1}.bench.example.test`);
      const workDir = join(work, tool);
      await mkdir(workDir, { recursive: true });
      const run = tool === 'certbot' ? runCertbot : runLego;
      show(await run({ pebble, webroot, names, workDir }), tool);
    }
  } finally {
    await nginx.stop();
    await pebble.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
