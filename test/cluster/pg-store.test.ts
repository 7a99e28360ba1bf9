import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterZoneLock } from '../../src/cluster/challenges.js';
import { newPool } from '../../src/cluster/db.js';
import { loadClusterKey, parseClusterKey } from '../../src/cluster/key.js';
import type { PgLocker } from '../../src/cluster/locker.js';
import { MIGRATIONS, migrate } from '../../src/cluster/migrations.js';
import { type ClusterHandle, openCluster } from '../../src/cluster/open.js';
import { clusterSchema } from '../../src/cluster/schema.js';
import { certInfo } from '../../src/crypto/pem.js';
import { createTestCA, issueLeaf, type TestCA } from '../../src/crypto/selfsigned.js';
import { CertkeeperError } from '../../src/errors.js';
import { pollUntil } from '../harness/ports.js';
import { type PostgresHandle, startPostgres } from '../harness/postgres.js';

const KEY_HEX = randomBytes(32).toString('hex');
let pgh: PostgresHandle;
let work: string;
let ca: TestCA;
const handles: ClusterHandle[] = [];
const children: ChildProcess[] = [];

async function bundle(domains: string[]) {
  const leaf = await issueLeaf(ca, { altNames: domains, days: 90 });
  return {
    domains,
    keyType: 'ecdsa-p256' as const,
    fullchainPem: leaf.certPem + ca.certPem,
    keyPem: leaf.keyPem,
  };
}

async function node(nodeName: string, lease = 30): Promise<ClusterHandle> {
  const storage = join(work, nodeName);
  const h = await openCluster(
    clusterSchema.parse({
      postgres: { url: pgh.url },
      node: nodeName,
      keyEnv: 'CK_TEST_KEY',
      lockLeaseSeconds: lease,
    }),
    storage,
    { env: { CK_TEST_KEY: KEY_HEX } },
  );
  handles.push(h);
  return h;
}

async function sql<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: pgh.url });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** A lock holder in its own process (see fixtures/holder.ts); resolves once it printed LOCKED. */
async function spawnHolder(opts: {
  node: string;
  name: string;
  lease: number;
  goFile: string;
  certFile: string;
}) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'holder.ts')],
    {
      env: {
        PATH: process.env.PATH,
        CK_PG_URL: pgh.url,
        CK_NODE: opts.node,
        CK_NAME: opts.name,
        CK_LEASE: String(opts.lease),
        CK_KEY: KEY_HEX,
        CK_STORAGE: join(work, opts.node),
        CK_GO_FILE: opts.goFile,
        CK_CERT_FILE: opts.certFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  child.stdout.on('data', (d) => {
    out += String(d);
  });
  child.stderr.on('data', (d) => {
    out += String(d);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const ok = await pollUntil(() => out.includes('LOCKED') || child.exitCode !== null, {
    attempts: 300,
    intervalMs: 100,
  });
  if (!ok || !out.includes('LOCKED')) throw new Error(`holder did not take the lock:\n${out}`);
  return { child, output: () => out, exited };
}

/** Polls tryLock until it wins (bounded): the lock a dead or paused holder had. */
async function waitForLock(locker: PgLocker, name: string, attempts = 100, intervalMs = 200) {
  for (let i = 0; i < attempts; i++) {
    const l = await locker.tryLock(name);
    if (l) return l;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${name}: lock never became free`);
}

beforeAll(async () => {
  pgh = await startPostgres();
  work = await fs.mkdtemp(join(tmpdir(), 'ck-cluster-'));
  ca = await createTestCA({ commonName: 'cluster test CA' });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const h of handles) await h.close();
  await pgh?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('cluster config and key', () => {
  it('refuses a cluster without a key, and a key that is not 32 bytes', async () => {
    expect(clusterSchema.safeParse({ postgres: { url: 'postgres://x@127.0.0.1/db' } }).success).toBe(false);
    await expect(loadClusterKey({ keyEnv: 'NOPE' }, {})).rejects.toMatchObject({
      kind: 'config',
      code: 'CK_ERR_CLUSTER_KEY',
      field: 'cluster.keyEnv',
    });
    expect(() => parseClusterKey('c2hvcnQ=', 'cluster.keyFile')).toThrow(/32 bytes/);
    const k = parseClusterKey(randomBytes(32).toString('base64'), 'cluster.keyFile');
    const sealed = k.encrypt('secret', 'a#1');
    expect(k.decrypt(sealed, 'a#1')).toBe('secret');
    // Bound to its row: the same ciphertext under another name/version does not open.
    expect(() => k.decrypt(sealed, 'b#1')).toThrow(CertkeeperError);
  });
});

describe('renew with cluster: uses the PostgreSQL store', () => {
  it('the node that wins the lock orders; another node finds it stored, serves it, and is busy while it is held', async () => {
    const { renew } = await import('../../src/pipeline/renew.js');
    const { wireCluster } = await import('../../src/cluster/wiring.js');
    const { parseConfig } = await import('../../src/config/load.js');
    // A database of its own: the other tests' nodes sync every certificate of theirs.
    const db = `renew_${randomBytes(4).toString('hex')}`;
    await sql(`CREATE DATABASE ${db}`);
    const url = pgh.url.replace(/\/postgres$/, `/${db}`);
    const q = async (text: string, params: unknown[]) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query(text, params)).rows;
      } finally {
        await c.end();
      }
    };
    const configFor = (n: string) =>
      parseConfig({
        acme: { directoryUrl: 'https://127.0.0.1:1/dir' },
        storage: { path: join(work, `renew-${n}`) },
        cluster: { postgres: { url }, node: `renew-${n}`, keyEnv: 'CK_TEST_KEY' },
        certificates: [
          {
            name: 'api',
            domains: ['api.example.com'],
            challenge: { type: 'http-01', webroot: join(work, `renew-${n}-www`) },
            bootstrap: false,
          },
        ],
      });
    // Without the cluster store, renew() still refuses a clustered configuration (one order per host otherwise).
    await expect(renew(configFor('a'))).rejects.toMatchObject({ kind: 'config', field: 'cluster' });

    const orders: string[] = [];
    const issuer = () => ({
      directoryUrl: 'https://127.0.0.1:1/dir',
      async order(req: { cert: { name: string; domains: string[] } }) {
        orders.push(req.cert.name);
        const b = await bundle(req.cert.domains);
        return { fullchainPem: b.fullchainPem, keyPem: b.keyPem, timings: { total: 1 } };
      },
    });
    const env = { CK_TEST_KEY: KEY_HEX };
    const a = (await wireCluster(configFor('a'), { env }))!;
    const b = (await wireCluster(configFor('b'), { env }))!;
    try {
      const ra = await renew(configFor('a'), { ...a.renewOptions(), issuer });
      expect(ra.results[0]).toMatchObject({ status: 'issued', version: 1 });
      const serial = ra.results[0]!.serial!;
      expect(
        await q('SELECT version::int, serial, stored_by FROM certificate_versions WHERE name = $1', ['api']),
      ).toEqual([{ version: 1, serial, stored_by: 'renew-a' }]);

      // b checks under the lock: PostgreSQL has it, so nothing is ordered and b's own folder now holds it.
      const rb = await renew(configFor('b'), { ...b.renewOptions(), issuer });
      expect(rb.results[0]).toMatchObject({ status: 'skipped', serial, version: 1 });
      expect(orders).toEqual(['api']);
      expect((await b.store.local.current('api'))?.serial).toBe(serial);

      // a holds the lock: a forced renewal on b is busy — neither success nor failure, nothing ordered.
      const held = (await a.store.locker.tryLock('api'))!;
      const busy = await renew(configFor('b'), { ...b.renewOptions(), issuer, force: true });
      await held.release();
      expect(busy).toMatchObject({ ok: true, results: [{ status: 'busy' }] });
      expect(orders).toEqual(['api']);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('migrations', () => {
  it('run exactly once when every node starts at the same moment', async () => {
    const db = `mig_${randomBytes(4).toString('hex')}`;
    await sql(`CREATE DATABASE ${db}`);
    const url = pgh.url.replace(/\/postgres$/, `/${db}`);
    const pools = Array.from({ length: 6 }, (_, i) => newPool(url, `n${i}`));
    try {
      const results = await Promise.all(pools.map((p, i) => migrate(p, `n${i}`)));
      expect(results.flat().sort()).toEqual(MIGRATIONS.map((m) => m.version));
      expect(results.filter((r) => r.length > 0)).toHaveLength(1);
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const rows = (await c.query('SELECT version FROM schema_version')).rows;
      await c.end();
      expect(rows).toHaveLength(MIGRATIONS.length);
      expect(await migrate(pools[0]!, 'again')).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});

describe('PgLocker', () => {
  it('one holder at a time; the holder is named from PostgreSQL; release hands it over', async () => {
    const a = await node('lock-a');
    const b = await node('lock-b');
    const la = await a.locker.tryLock('shared');
    expect(la).toBeDefined();
    expect(await b.locker.tryLock('shared')).toBeUndefined();
    expect(await b.locker.holder('shared')).toMatchObject({ node: 'lock-a', pid: process.pid });
    await expect(b.locker.lock('shared', { waitMs: 300 })).rejects.toMatchObject({ code: 'CK_ERR_LOCKED' });
    await la!.release();
    const lb = await b.locker.tryLock('shared');
    expect(lb).toBeDefined();
    await lb!.release();
    expect(await a.locker.holder('shared')).toBeUndefined();
  });

  it('kill -9 of the holder: PostgreSQL releases its lock and another node takes it at once', async () => {
    const b = await node('kill-b');
    const h = await spawnHolder({
      node: 'kill-a',
      name: 'killed',
      lease: 30,
      goFile: join(work, 'never'),
      certFile: join(work, 'none.json'),
    });
    expect(await b.locker.tryLock('killed')).toBeUndefined();
    expect((await b.locker.holder('killed'))?.node).toBe('kill-a');
    h.child.kill('SIGKILL');
    await h.exited;
    const got = await waitForLock(b.locker, 'killed', 100, 100);
    await got.release();
  });

  it('Route53 zone lock: read-modify-write of one zone never overlaps across nodes', async () => {
    const a = await node('zone-a');
    const b = await node('zone-b');
    let active = 0;
    let maxActive = 0;
    const work = async (ms = 30) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, ms));
      active--;
    };
    const la = clusterZoneLock(a.zoneLocker, 20_000);
    const lb = clusterZoneLock(b.zoneLocker, 20_000);
    await Promise.all([1, 2, 3].flatMap(() => [la('Z1', () => work()), lb('Z1', () => work())]));
    expect(maxActive).toBe(1);
    // different zones do not wait for each other
    await Promise.all([la('Z2', () => work(1000)), lb('Z3', () => work(1000))]);
    expect(maxActive).toBe(2);
  });

  it('lost aborts when the lock session is ended by the server', async () => {
    const a = await node('lost-a');
    const l = (await a.locker.tryLock('lostcase'))!;
    expect(l.lost.aborted).toBe(false);
    await sql(
      `SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid <> pg_backend_pid()
         AND l.objid::bigint = ((hashtext('lostcase')::bigint + 4294967296) % 4294967296)`,
    );
    expect(await pollUntil(() => l.lost.aborted, { attempts: 100 })).toBe(true);
    expect(a.locker.heldLock('lostcase')).toBeUndefined();
    await expect(a.store.save('lostcase', await bundle(['lost.example.com']))).rejects.toMatchObject({
      code: 'CK_ERR_LOCK_LOST',
    });
    expect(await sql('SELECT 1 FROM certificates WHERE name = $1', ['lostcase'])).toHaveLength(0);
    await l.release();
  });
});

describe('PgStore', () => {
  it('stores through the lock, encrypts the key at rest and materialises on another node', async () => {
    const a = await node('store-a');
    const b = await node('store-b');
    const b1 = await bundle(['www.example.com']);
    const lock = (await a.locker.tryLock('www'))!;
    const saved = await a.store.save('www', b1);
    await lock.release();
    expect(saved).toMatchObject({ name: 'www', version: 1, serial: certInfo(b1.fullchainPem).serial });

    const rows = await sql<{ key_sealed: Buffer }>(
      'SELECT key_sealed FROM certificate_versions WHERE name = $1',
      ['www'],
    );
    expect(rows[0]!.key_sealed.toString('latin1')).not.toContain('PRIVATE KEY');
    expect(rows[0]!.key_sealed.toString('latin1')).not.toContain(b1.keyPem.split('\n')[1]!);

    // b has never seen it: current() catches up from the database into b's own certbot folder.
    const onB = await b.store.current('www');
    expect(onB).toMatchObject({ serial: saved.serial, version: 1 });
    expect(onB!.paths.privkey.startsWith(join(work, 'store-b'))).toBe(true);
    expect(await fs.readFile(join(work, 'store-b', 'live', 'www', 'privkey.pem'), 'utf8')).toBe(b1.keyPem);
    expect((await fs.stat(join(work, 'store-b', 'archive', 'www', 'privkey1.pem'))).mode & 0o777).toBe(0o600);
    expect(await fs.readlink(join(work, 'store-b', 'live', 'www', 'fullchain.pem'))).toBe(
      '.current/fullchain.pem',
    );

    // version 2 from b; a follows through the periodic compare
    const b2 = await bundle(['www.example.com']);
    const lb = (await b.locker.tryLock('www'))!;
    expect(lb.fence).toBe(1);
    const v2 = await b.store.save('www', b2);
    await lb.release();
    expect(v2.version).toBe(2);
    expect(await a.store.syncAll()).toEqual(['www']);
    expect((await a.store.local.current('www'))?.serial).toBe(v2.serial);
    expect(await a.store.syncAll()).toEqual([]);
    expect(await a.store.readState('www')).toMatchObject({
      version: 2,
      serial: v2.serial,
      domains: ['www.example.com'],
    });
  });

  it('refuses to write without the lock', async () => {
    const a = await node('nolock-a');
    await expect(a.store.save('nolock', await bundle(['n.example.com']))).rejects.toMatchObject({
      kind: 'lock',
      code: 'CK_ERR_LOCK_LOST',
    });
  });

  it('compare-and-swap: a holder whose fence is behind the database never overwrites', async () => {
    const a = await node('cas-a');
    const b = await node('cas-b');
    const la = (await a.locker.tryLock('cas'))!;
    expect(la.fence).toBe(0);
    // Another writer got in (as after a lost lock): the head moves on under a.
    await la.release();
    const lockB = (await b.locker.tryLock('cas'))!;
    const newer = await b.store.save('cas', await bundle(['cas.example.com']));
    await lockB.release();
    const la2 = (await a.locker.tryLock('cas'))!;
    la2.fence = 0; // what a saw before it was paused
    await expect(a.store.save('cas', await bundle(['cas.example.com']))).rejects.toMatchObject({
      code: 'CK_ERR_FENCED',
    });
    await la2.release();
    const head = await sql<{ version: string }>('SELECT version FROM certificates WHERE name = $1', ['cas']);
    expect(Number(head[0]!.version)).toBe(newer.version);
    expect((await a.store.current('cas'))?.serial).toBe(newer.serial);
  });

  it('a holder paused past its lease (SIGSTOP) cannot overwrite the newer certificate after SIGCONT', async () => {
    const b = await node('stop-b', 2);
    const go = join(work, 'stop-go');
    const certFile = join(work, 'stop-cert.json');
    const stale = await bundle(['stop.example.com']);
    await fs.writeFile(certFile, JSON.stringify(stale));
    const h = await spawnHolder({ node: 'stop-a', name: 'stopped', lease: 2, goFile: go, certFile });
    h.child.kill('SIGSTOP');
    // PostgreSQL ends the silent session after the lease; b wins the lock and stores version 1.
    const lb = await waitForLock(b.locker, 'stopped');
    const fresh = await b.store.save('stopped', await bundle(['stop.example.com']));
    await lb.release();
    await fs.writeFile(go, '');
    h.child.kill('SIGCONT');
    await h.exited;
    expect(h.output()).toMatch(/ERROR CK_ERR_(LOCK_LOST|FENCED)/);
    expect(h.output()).not.toContain('SAVED');
    const head = await sql<{ version: string; serial: string }>(
      'SELECT c.version, v.serial FROM certificates c JOIN certificate_versions v USING (name, version) WHERE c.name = $1',
      ['stopped'],
    );
    expect(head).toEqual([{ version: String(fresh.version), serial: fresh.serial }]);
    expect(await fs.readdir(join(work, 'stop-a')).catch(() => [])).not.toContain('live');
  });

  it('state: ARI windows and ACM ARNs in their own tables, round-tripped, removed keys removed', async () => {
    const a = await node('state-a');
    const ari = {
      start: '2026-01-01T00:00:00Z',
      end: '2026-01-02T00:00:00Z',
      fetchedAt: '2026-01-01T00:00:00Z',
    };
    await a.store.updateState('st', {
      failures: 2,
      ari,
      deploy: { 'acm:us-east-1': { arn: 'arn:aws:acm:x' }, other: 1 },
    });
    expect(await sql('SELECT ari FROM ari_windows WHERE name = $1', ['st'])).toEqual([{ ari }]);
    expect(await sql('SELECT deploy_key, value FROM acm_arns WHERE name = $1', ['st'])).toEqual([
      { deploy_key: 'acm:us-east-1', value: { arn: 'arn:aws:acm:x' } },
    ]);
    const b = await node('state-b');
    expect(await b.store.readState('st')).toEqual({
      name: 'st',
      failures: 2,
      ari,
      deploy: { other: 1, 'acm:us-east-1': { arn: 'arn:aws:acm:x' } },
    });
    await b.store.updateState('st', { ari: undefined, failures: undefined });
    expect(await a.store.readState('st')).toEqual({
      name: 'st',
      deploy: { other: 1, 'acm:us-east-1': { arn: 'arn:aws:acm:x' } },
    });
    expect(await sql('SELECT 1 FROM ari_windows WHERE name = $1', ['st'])).toHaveLength(0);
  });

  it('export writes a certbot folder from the database', async () => {
    const a = await node('export-a');
    const l = (await a.locker.tryLock('exp'))!;
    const s = await a.store.save('exp', await bundle(['exp.example.com']));
    await l.release();
    const out = join(work, 'exported');
    expect(await a.store.exportTo(out)).toContain('exp');
    const { CertStore } = await import('../../src/store/store.js');
    expect((await new CertStore(out).current('exp'))?.serial).toBe(s.serial);
  });

  it('certkeeper export writes the database as a certbot folder, and refuses a non-empty one', async () => {
    const a = await node('cli-a');
    const l = (await a.locker.tryLock('clix'))!;
    const s = await a.store.save('clix', await bundle(['clix.example.com']));
    await l.release();
    const cfg = join(work, 'cli.json');
    await fs.writeFile(
      cfg,
      JSON.stringify({
        acme: { directoryUrl: 'https://127.0.0.1:1/dir' },
        storage: { path: join(work, 'cli-storage') },
        cluster: { postgres: { url: pgh.url }, node: 'cli', keyEnv: 'CK_TEST_KEY' },
      }),
    );
    const out = join(work, 'cli-export');
    const run = (dir: string) =>
      new Promise<{ code: number | null; text: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts'),
            '--config',
            cfg,
            'export',
            dir,
          ],
          { env: { PATH: process.env.PATH, CK_TEST_KEY: KEY_HEX }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let text = '';
        child.stdout.on('data', (d) => {
          text += String(d);
        });
        child.stderr.on('data', (d) => {
          text += String(d);
        });
        child.once('exit', (code) => resolve({ code, text }));
      });
    const first = await run(out);
    expect(first.text).toContain('clix');
    expect(first.code).toBe(0);
    const { CertStore } = await import('../../src/store/store.js');
    expect((await new CertStore(out).current('clix'))?.serial).toBe(s.serial);
    expect((await fs.stat(join(out, 'archive', 'clix', 'privkey1.pem'))).mode & 0o777).toBe(0o600);
    const again = await run(out);
    expect(again.code).toBe(2);
    expect(again.text).toContain('is not empty');
  });

  it('PostgreSQL down: local files keep being served, writes fail as store errors, nothing local deleted', async () => {
    const a = await node('down-a');
    const b = await node('down-b');
    const l = (await a.locker.tryLock('down'))!;
    const s = await a.store.save('down', await bundle(['down.example.com']));
    await l.release();
    expect((await b.store.current('down'))?.serial).toBe(s.serial);
    await pgh.stopServer();
    try {
      expect((await b.store.current('down'))?.serial).toBe(s.serial);
      expect(b.store.databaseUp).toBe(false);
      expect(await b.store.listNames()).toContain('down');
      await expect(b.store.updateState('down', { failures: 1 })).rejects.toMatchObject({
        code: 'CK_ERR_CLUSTER_DB',
      });
      await expect(b.locker.tryLock('down')).rejects.toMatchObject({ code: 'CK_ERR_CLUSTER_DB' });
      expect(await fs.readFile(join(work, 'down-b', 'live', 'down', 'cert.pem'), 'utf8')).toContain(
        'BEGIN CERTIFICATE',
      );
    } finally {
      await pgh.start();
    }
    expect(
      await pollUntil(
        async () => {
          await b.store.syncAll();
          return b.store.databaseUp;
        },
        {
          attempts: 50,
          intervalMs: 200,
        },
      ),
    ).toBe(true);
  });
});

describe('certkeeper run with PostgreSQL away at start', () => {
  it('a node that was in the cluster waits for the database; a node that never reached it fails at once', async () => {
    const { wireClusterWaiting } = await import('../../src/cluster/wiring.js');
    const { parseConfig } = await import('../../src/config/load.js');
    const configFor = (n: string) =>
      parseConfig({
        acme: { directoryUrl: 'https://127.0.0.1:1/dir' },
        storage: { path: join(work, `wait-${n}`) },
        cluster: { postgres: { url: pgh.url }, node: `wait-${n}`, keyEnv: 'CK_TEST_KEY' },
      });
    const env = { CK_TEST_KEY: KEY_HEX };
    await fs.mkdir(join(work, 'wait-old', 'cluster'), { recursive: true });
    const waits: number[] = [];
    await pgh.stopServer();
    let started = false;
    try {
      await expect(
        wireClusterWaiting(configFor('new'), {
          env,
          sleep: async (ms) => {
            waits.push(ms);
          },
        }),
      ).rejects.toMatchObject({ code: 'CK_ERR_CLUSTER_DB' });
      expect(waits).toEqual([]);
      const w = await wireClusterWaiting(configFor('old'), {
        env,
        sleep: async (ms) => {
          waits.push(ms);
          if (waits.length === 2) {
            await pgh.start();
            started = true;
          }
        },
      });
      expect(waits).toEqual([1000, 2000]);
      expect(w?.databaseUp()).toBe(true);
      await w?.close();
      // Stopped while waiting: resolves undefined (run exits cleanly).
      await pgh.stopServer();
      started = false;
      const ctl = new AbortController();
      const none = await wireClusterWaiting(configFor('old'), {
        env,
        signal: ctl.signal,
        sleep: async () => {
          ctl.abort();
          throw new Error('aborted');
        },
      });
      expect(none).toBeUndefined();
    } finally {
      if (!started) await pgh.start();
    }
  });
});
