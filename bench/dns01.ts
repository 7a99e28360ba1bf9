/**
 * DNS-01 benchmark: `count` wildcard + apex certificates in one Route53 zone, issued by the pipeline from
 * the harness Pebble through the real @aws-sdk/client-route-53 pointed (AWS_ENDPOINT_URL_ROUTE_53) at the
 * fake Route53, which publishes to the harness challtestsrv. Counts Route53 API calls per certificate,
 * ChangeBatches and GetChange calls per order, and wall time. Goal: one ChangeBatch to present and one
 * INSYNC wait per zone per order (certbot and lego make one change per domain).
 *
 * The fake syncs a change at once (`insyncAfterGetChanges: 0`) unless told otherwise, so the wall time is
 * certkeeper + Pebble, not Route53's propagation delay (typically 30-60 s on the real service).
 * Standalone: `node --import tsx bench/dns01.ts [count]`.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { destroySharedRoute53Clients } from '../src/challenges/route53/client.js';
import { parseConfig } from '../src/config/load.js';
import { renew } from '../src/renew.js';
import { startFakeRoute53 } from '../test/fakes/route53-server.js';
import { type PebbleHandle, startPebble } from '../test/harness/index.js';

export interface Dns01BenchOptions {
  pebble: PebbleHandle;
  count?: number;
  /** Working folder (created; removed afterwards when this function made it). */
  work?: string;
  concurrency?: number;
  /** GetChange calls before a change is INSYNC (0: at once). */
  insyncAfterGetChanges?: number;
}

export interface Dns01BenchResult {
  certificates: number;
  seconds: number;
  certificatesPerSecond: number;
  route53CallsPerCertificate: number;
  /** ChangeBatches that present records, per order (goal: 1 per zone). */
  changeBatchesPerOrder: number;
  /** ChangeBatches that remove them again, per order. */
  cleanupBatchesPerOrder: number;
  getChangeCallsPerOrder: number;
  callsByAction: Record<string, number>;
  failed: number;
}

const BENCH_ENV = (endpoint: string): Record<string, string | undefined> => ({
  AWS_ENDPOINT_URL_ROUTE_53: endpoint,
  AWS_ACCESS_KEY_ID: 'AKIDBENCHFAKE',
  AWS_SECRET_ACCESS_KEY: 'bench-fake-secret',
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
});

export async function benchDns01(opts: Dns01BenchOptions): Promise<Dns01BenchResult> {
  const count = opts.count ?? 20;
  const ownWork = !opts.work;
  const work = opts.work ?? (await fs.mkdtemp(join(tmpdir(), 'ck-bench-dns01-')));
  await fs.mkdir(work, { recursive: true });
  const fake = await startFakeRoute53({
    zones: [{ id: 'ZBENCHDNS01', name: 'bench.dns01.test' }],
    challtestsrv: opts.pebble.challtestsrvUrl,
    insyncAfterGetChanges: opts.insyncAfterGetChanges ?? 0,
    insyncAfterMs: 500,
  });
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(BENCH_ENV(fake.url))) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  destroySharedRoute53Clients();
  try {
    const cert = (name: string) => ({
      name,
      domains: [`${name}.bench.dns01.test`, `*.${name}.bench.dns01.test`],
      challenge: {
        type: 'dns-01' as const,
        provider: 'route53' as const,
        nameservers: [opts.pebble.dnsServer],
        propagationTimeoutSeconds: 60,
      },
    });
    const config = (names: string[]) =>
      parseConfig(
        {
          acme: { directoryUrl: opts.pebble.directoryUrl, caBundle: opts.pebble.caBundlePath },
          storage: { path: join(work, 'le') },
          renewal: { concurrency: opts.concurrency ?? 4 },
          certificates: names.map(cert),
        },
        { env: {} },
      );
    // Account registration and the SDK's first credential resolution happen once, before the clock.
    await renew(config(['warmup']));
    const since = fake.calls.length;
    const names = Array.from({ length: count }, (_, i) => `c${i + 1}`);
    const t0 = performance.now();
    const report = await renew(config(names), { names });
    const seconds = (performance.now() - t0) / 1000;
    const calls = fake.calls.slice(since);
    const byAction: Record<string, number> = {};
    for (const c of calls) byAction[c.action] = (byAction[c.action] ?? 0) + 1;
    const batches = calls.filter((c) => c.action === 'ChangeResourceRecordSets');
    const round = (n: number) => Math.round(n * 100) / 100;
    return {
      certificates: report.results.filter((r) => r.status === 'issued').length,
      seconds: round(seconds),
      certificatesPerSecond: round(count / seconds),
      route53CallsPerCertificate: round(calls.length / count),
      changeBatchesPerOrder: round(
        batches.filter((c) => c.comment?.startsWith('certkeeper present')).length / count,
      ),
      cleanupBatchesPerOrder: round(
        batches.filter((c) => c.comment?.startsWith('certkeeper cleanup')).length / count,
      ),
      getChangeCallsPerOrder: round((byAction.GetChange ?? 0) / count),
      callsByAction: byAction,
      failed: report.results.filter((r) => r.status === 'failed').length,
    };
  } finally {
    destroySharedRoute53Clients();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await fake.close();
    if (ownWork) await fs.rm(work, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const pebble = await startPebble();
  try {
    const res = await benchDns01({ pebble, count: Number(process.argv[2] ?? 20) });
    process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
  } finally {
    await pebble.stop();
  }
}
