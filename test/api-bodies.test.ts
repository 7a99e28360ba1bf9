/**
 * The large API bodies, streamed in pieces (GET /metrics from kept per-certificate text, GET /v1/certificates a few
 * rows at a time): the same bytes as before, and they follow the state cache.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from '../bench/daemon.js';
import { parseConfig } from '../src/config/load.js';
import { buildApp } from '../src/daemon/app.js';
import { StateCache } from '../src/daemon/cache.js';
import { DaemonMetrics } from '../src/daemon/metrics.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';

const N = 150; // the metrics text is ~120 kB: eight 16 kB pieces; the certificates three chunks of rows
const name = (i: number) => `site-${String(i).padStart(5, '0')}`;
let root: string;
let store: CertStore;
let cache: StateCache;
let metrics: DaemonMetrics;
let app: FastifyInstance;
const now = () => new Date('2030-01-01T00:00:00Z');

beforeAll(async () => {
  root = await fs.mkdtemp(join(tmpdir(), 'ck-api-bodies-'));
  await seed(root, N);
  const config = parseConfig({
    acme: { directoryUrl: 'https://127.0.0.1:1/dir' },
    storage: { path: root },
    certificates: Array.from({ length: N }, (_, i) => ({
      name: name(i),
      domains: [`${name(i)}.certkeeper.test`],
      challenge: { type: 'http-01', webroot: join(root, 'www') },
    })),
  });
  store = new CertStore(root);
  cache = new StateCache(store, config);
  await cache.loadAll();
  metrics = new DaemonMetrics(cache, now, { store, processMetrics: false });
  app = await buildApp({
    logger: silentLogger,
    bodyLimitBytes: 65_536,
    queue: {} as never,
    cache,
    metrics,
    now,
    configuredNames: () => config.certificates.map((c) => c.name),
    shuttingDown: () => false,
  });
}, 60_000);
afterAll(async () => {
  await app?.close();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('streamed API bodies', () => {
  it('GET /metrics is the registry text, byte for byte, and follows a refreshed certificate', async () => {
    const first = await app.inject({ url: '/metrics' });
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe(metrics.registry.contentType);
    expect(first.body.length).toBeGreaterThan(65_536);
    expect(first.body).toBe(await metrics.registry.metrics());
    expect(first.body).toContain(`certkeeper_certificate_consecutive_failures{name="${name(7)}"} 0\n`);

    await store.updateState(name(7), { failures: 3 });
    await cache.refresh([name(7)]);
    const second = (await app.inject({ url: '/metrics' })).body;
    expect(second).toContain(`certkeeper_certificate_consecutive_failures{name="${name(7)}"} 3\n`);
    expect(second).toBe(await metrics.registry.metrics());
  });

  it('GET /readyz lists every configured certificate after its problems, as one JSON document', async () => {
    const res = await app.inject({ url: '/readyz' });
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = res.json() as {
      ready: boolean;
      problems: { name: string; problem: string }[];
      certificates: { name: string; ready: boolean; health: string; notAfter?: string }[];
    };
    expect(res.body).toBe(JSON.stringify(body));
    expect(Object.keys(body)).toEqual(['ready', 'problems', 'certificates']);
    expect(res.statusCode).toBe(body.ready ? 200 : 503);
    expect(body.certificates.map((c) => c.name)).toEqual(Array.from({ length: N }, (_, i) => name(i)));
    const row = cache.row(cache.get(name(3))!, now());
    expect(body.certificates[3]).toMatchObject({ name: name(3), ready: row.ready, health: row.health });
    expect(body.certificates[3]!.notAfter).toBe(row.notAfter);
  });

  it('GET /v1/certificates is the JSON of every row with lastError', async () => {
    const res = await app.inject({ url: '/v1/certificates' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    const rows = cache.rows(now()).map((r) => ({ ...r, lastError: undefined }));
    expect(res.body).toBe(JSON.stringify({ certificates: rows }));
    expect(res.json().certificates).toHaveLength(N);
    expect(res.json().certificates[7].failures).toBe(3);
  });
});
