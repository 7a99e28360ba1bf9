/**
 * The daemon with `cluster:` against a real PostgreSQL: catch-up on start, every node's deployed serial in
 * GET /v1/certificates, and a database outage — local files keep being served, /readyz and metrics say so, a
 * certificate falling due is alerted instead of queued, and the renewal runs (through the PostgreSQL store) as
 * soon as the database answers.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterHandle, openCluster } from '../../src/cluster/open.js';
import { clusterSchema } from '../../src/cluster/schema.js';
import { wireCluster } from '../../src/cluster/wiring.js';
import { parseConfig } from '../../src/config/load.js';
import { createTestCA, type TestCA } from '../../src/crypto/selfsigned.js';
import { createDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { silentLogger } from '../../src/log.js';
import { pollUntil } from '../harness/ports.js';
import { type PostgresHandle, startPostgres } from '../harness/postgres.js';
import { storeLeaf } from './store-leaf.js';

const DAY = 86_400_000;
const KEY = randomBytes(32).toString('base64');
let pgh: PostgresHandle;
let work: string;
let ca: TestCA;
let other: ClusterHandle;
let daemon: Daemon | undefined;
let daemon2: Daemon | undefined;
let receiver: Server;
const alerts: Record<string, unknown>[] = [];
let clock = Date.now();

async function sql<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: pgh.url });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** Another node stores a certificate (as its pipeline would, under the lock). */
const storeOnOther = (name: string, days: number) => storeLeaf(other, ca, name, days);

beforeAll(async () => {
  pgh = await startPostgres();
  work = await fs.mkdtemp(join(tmpdir(), 'ck-cluster-daemon-'));
  ca = await createTestCA({ commonName: 'cluster daemon test CA' });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      alerts.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  other = await openCluster(
    clusterSchema.parse({ postgres: { url: pgh.url }, node: 'other', keyEnv: 'K' }),
    join(work, 'other'),
    { env: { K: KEY } },
  );
}, 60_000);

afterAll(async () => {
  await daemon?.stop({ graceMs: 0 });
  await daemon2?.stop({ graceMs: 0 });
  await other?.close();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
  await pgh?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('daemon with cluster:', { timeout: 120_000 }, () => {
  it('catches up on start, shows every node’s deployed serial, and waits out a PostgreSQL outage', async () => {
    const site = await storeOnOther('site', 90);
    const late = await storeOnOther('late', 10);
    await other.store.recordDeploy('site', {
      version: site.version,
      serial: site.serial,
      ok: true,
      detail: 'nginx: reloaded',
    });
    const storage = join(work, 'd1');
    const config = parseConfig({
      // Nothing listens there: an order placed after the outage fails at once, and is recorded in PostgreSQL.
      acme: { directoryUrl: 'https://127.0.0.1:1/directory' },
      storage: { path: storage },
      cluster: { postgres: { url: pgh.url }, node: 'd1', keyEnv: 'K', syncIntervalSeconds: 1 },
      notify: [
        {
          type: 'webhook',
          url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
          events: ['failure'],
        },
      ],
      certificates: ['site', 'late'].map((name) => ({
        name,
        domains: [`${name}.example.com`],
        challenge: { type: 'http-01', webroot: join(work, 'www') },
        bootstrap: false,
      })),
    });
    const cw = (await wireCluster(config, { env: { K: KEY } }))!;
    daemon = createDaemon(config, {
      logger: silentLogger,
      cluster: cw,
      now: () => new Date(clock),
      ari: false,
      processMetrics: false,
      notifyRetryDelaysMs: [50],
    });
    await daemon.start();
    const app = daemon.app!;

    // Catch-up on start: d1's own certbot folder holds what the other node stored; nothing was due.
    expect((await daemon.store.current('site'))?.serial).toBe(site.serial);
    expect((await daemon.store.current('late'))?.serial).toBe(late.serial);
    expect(daemon.queue.list()).toEqual([]);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    const certs = (await app.inject({ url: '/v1/certificates' })).json().certificates as {
      name: string;
      nodes: { node: string; serial: string; ok: boolean }[];
    }[];
    expect(certs.find((c) => c.name === 'site')?.nodes).toEqual([
      expect.objectContaining({ node: 'other', serial: site.serial, ok: true, version: 1 }),
    ]);
    expect(certs.find((c) => c.name === 'late')?.nodes).toEqual([]);
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/^certkeeper_cluster_database_up 1$/m);

    // Another node renews 'site': this node's folder follows (NOTIFY), and so does what its API reports.
    const site2 = await storeOnOther('site', 90);
    const served = async () =>
      (
        (await app.inject({ url: '/v1/certificates' })).json().certificates as {
          name: string;
          serial?: string;
        }[]
      ).find((c) => c.name === 'site')?.serial;
    expect(
      await pollUntil(async () => (await served()) === site2.serial, { attempts: 100, intervalMs: 100 }),
    ).toBe(true);
    expect((await daemon.store.current('site'))?.serial).toBe(site2.serial);

    await pgh.stopServer();
    try {
      // 'late' (10 days) falls due at 1/3 of its lifetime left, still outside its danger window.
      clock = Date.now() + 7 * DAY;
      await daemon.tick('schedule');
      expect(cw.databaseUp()).toBe(false);
      expect(daemon.queue.list()).toEqual([]);
      const ready = await app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().problems[0].problem).toMatch(/^PostgreSQL unreachable since .*renewals wait/);
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/^certkeeper_cluster_database_up 0$/m);
      expect(await pollUntil(() => alerts.length > 0, { attempts: 100, intervalMs: 50 })).toBe(true);
      expect(alerts).toEqual([
        expect.objectContaining({
          event: 'failure',
          certificate: 'late',
          code: 'CK_ERR_CLUSTER_DB',
          daysLeft: 2,
        }),
      ]);
      // Told once per outage (then daily), not at every check.
      await daemon.tick('schedule');
      await new Promise((r) => setTimeout(r, 200));
      expect(alerts).toHaveLength(1);
      // Nothing local is deleted: both certificates are still live in d1's folder.
      expect((await daemon.store.current('site'))?.serial).toBe(site2.serial);
      expect((await daemon.store.current('late'))?.serial).toBe(late.serial);
    } finally {
      await pgh.start();
    }

    // The database answers again: the due certificate is renewed at once, through PostgreSQL (the order fails
    // here — no CA — and that attempt is recorded in the database, not only on this node).
    expect(
      await pollUntil(() => daemon!.queue.list().some((j) => j.names.includes('late')), {
        attempts: 600,
        intervalMs: 100,
      }),
    ).toBe(true);
    await daemon.queue.idle();
    const rows = await sql<{ state: { lastAttempt?: { result: string } } }>(
      'SELECT state FROM certificate_state WHERE name = $1',
      ['late'],
    );
    expect(rows[0]?.state.lastAttempt?.result).toBe('failure');
    expect((await app.inject({ url: '/readyz' })).json().problems).not.toContainEqual(
      expect.objectContaining({ problem: expect.stringMatching(/PostgreSQL/) }),
    );
    expect(
      (await sql('SELECT count(*)::int AS n FROM certificate_versions WHERE name = $1', ['late']))[0],
    ).toEqual({ n: 1 });
  });
  it('an API trigger runs where the lock is won (busy while another node holds it, then here, through PostgreSQL); a reload reaches the node sync', async () => {
    const api = await storeOnOther('api', 90);
    const raw = {
      acme: { directoryUrl: 'https://127.0.0.1:1/directory' },
      storage: { path: join(work, 'd2') },
      server: { forceCooldownSeconds: 0 },
      cluster: { postgres: { url: pgh.url }, node: 'd2', keyEnv: 'K', syncIntervalSeconds: 1 },
      certificates: [
        {
          name: 'api',
          domains: ['api.example.com'],
          challenge: { type: 'http-01', webroot: join(work, 'www') },
          bootstrap: false,
        } as Record<string, unknown>,
      ],
    };
    const config = parseConfig(raw);
    const cw = (await wireCluster(config, { env: { K: KEY } }))!;
    daemon2 = createDaemon(config, { logger: silentLogger, cluster: cw, ari: false, processMetrics: false });
    await daemon2.start();
    const app = daemon2.app!;
    const trigger = async () => {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/renew',
        payload: { names: ['api'], force: true },
      });
      expect(r.statusCode).toBe(202);
      await daemon2!.queue.idle();
      return daemon2!.queue.get(r.json().jobId)!;
    };
    const state = async () =>
      (
        await sql<{ state: Record<string, unknown> }>('SELECT state FROM certificate_state WHERE name = $1', [
          'api',
        ])
      )[0]?.state;
    const before = await state();

    // The other node holds the lock: the job here is busy — neither success nor failure, nothing written.
    const held = (await other.locker.tryLock('api'))!;
    const busy = await trigger();
    await held.release();
    expect(busy.results).toEqual([expect.objectContaining({ name: 'api', status: 'busy' })]);
    expect(await state()).toEqual(before);

    // Free: the trigger runs on this node (the order fails here — no CA — and the attempt is in PostgreSQL).
    const ran = await trigger();
    expect(ran.results).toEqual([expect.objectContaining({ name: 'api', status: 'failed' })]);
    expect((await state())?.lastAttempt).toMatchObject({ result: 'failure' });
    expect((await daemon2.store.current('api'))?.serial).toBe(api.serial);

    // A reload adds a certificate: this node's own deployers follow it when another node stores it.
    const added = await storeOnOther('added', 90);
    expect(await cw.node.deployLocal('added', added)).toEqual([]);
    await daemon2.useConfig(
      parseConfig({
        ...raw,
        certificates: [
          ...raw.certificates,
          {
            name: 'added',
            domains: ['added.example.com'],
            challenge: { type: 'http-01', webroot: join(work, 'www2') },
            bootstrap: false,
            deploy: [{ type: 'nginx', signal: { pidFile: join(work, 'no-nginx.pid') } }],
          },
        ],
      }),
    );
    expect(await cw.node.deployLocal('added', added)).toEqual([
      expect.objectContaining({ deployer: 'nginx', ok: false }),
    ]);
  });
});
