import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChallengeInput } from '../../src/challenges/types.js';
import { ClusterChallenges } from '../../src/cluster/challenges.js';
import { type ClusterHandle, openCluster } from '../../src/cluster/open.js';
import { clusterSchema } from '../../src/cluster/schema.js';
import { ClusterSync } from '../../src/cluster/sync.js';
import { createTestCA, type TestCA } from '../../src/crypto/selfsigned.js';
import { pollUntil } from '../harness/ports.js';
import { type PostgresHandle, startPostgres } from '../harness/postgres.js';
import { storeLeaf } from './store-leaf.js';

const KEY = randomBytes(32).toString('base64');
let pgh: PostgresHandle;
let work: string;
let ca: TestCA;
const handles: ClusterHandle[] = [];
const syncs: ClusterSync[] = [];

async function node(name: string) {
  const h = await openCluster(
    clusterSchema.parse({ postgres: { url: pgh.url }, node: name, keyEnv: 'K' }),
    join(work, name),
    { env: { K: KEY } },
  );
  handles.push(h);
  const changes: { name: string; serial: string; version: number }[] = [];
  const webroot = join(work, name, 'webroot');
  const sync = new ClusterSync({
    store: h.store,
    url: h.url,
    // Long: only NOTIFY (or the catch-up after a reconnect) can deliver within the test's bounds.
    intervalMs: 600_000,
    webroots: [webroot],
    onChange: async (n, live) => {
      changes.push({ name: n, serial: live.serial, version: live.version });
    },
  });
  syncs.push(sync);
  return { h, sync, changes, webroot };
}

const store = (h: ClusterHandle, name: string) => storeLeaf(h, ca, name);

beforeAll(async () => {
  pgh = await startPostgres();
  work = await fs.mkdtemp(join(tmpdir(), 'ck-cluster-sync-'));
  ca = await createTestCA({ commonName: 'cluster sync CA' });
});
afterAll(async () => {
  for (const s of syncs) await s.stop();
  for (const h of handles) await h.close();
  await pgh?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('ClusterSync', () => {
  it('NOTIFY brings a certificate stored on one node live on another, through a PostgreSQL restart, and a late node catches up on start', async () => {
    const a = await node('a');
    const b = await node('b');
    await a.sync.start();
    await b.sync.start();
    const v1 = await store(a.h, 'web');
    expect(await pollUntil(() => b.changes.some((c) => c.serial === v1.serial), { attempts: 100 })).toBe(
      true,
    );
    expect(b.changes.at(-1)).toEqual({ name: 'web', serial: v1.serial, version: 1 });
    expect((await b.h.store.local.current('web'))?.serial).toBe(v1.serial);
    expect(a.changes).toEqual([]); // a stored it itself: the pipeline deployed it there

    await pgh.restart({ downMs: 300 });
    expect(await pollUntil(() => b.sync.listening, { attempts: 200, intervalMs: 100 })).toBe(true);
    const v2 = await store(a.h, 'web');
    expect(await pollUntil(() => b.changes.some((c) => c.serial === v2.serial), { attempts: 100 })).toBe(
      true,
    );
    expect((await b.h.store.local.current('web'))?.serial).toBe(v2.serial);

    const c = await node('c');
    await c.sync.start();
    expect((await c.h.store.local.current('web'))?.serial).toBe(v2.serial);
    expect(c.changes.map((x) => x.version)).toEqual([2]);
  });

  it('HTTP-01: a token published by one node is written and confirmed by every live node before the CA is asked', async () => {
    const x = await node('x');
    const y = await node('y');
    await x.sync.start();
    await y.sync.start();
    const ch: ChallengeInput = {
      certName: 'tok',
      domain: 'tok.example.com',
      wildcard: false,
      type: 'http-01',
      token: randomBytes(24).toString('base64url'),
      keyAuthorization: `${randomBytes(24).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
      dnsRecordName: '',
      dnsValue: '',
    };
    const chs = new ClusterChallenges(x.h.store, { liveWithinMs: 60_000, confirmTimeoutMs: 10_000 });
    await chs.publish(ch);
    const confirmed = await chs.waitConfirmed([ch]);
    expect(confirmed).toEqual(expect.arrayContaining(['x', 'y']));
    const file = join(y.webroot, '.well-known', 'acme-challenge', ch.token);
    expect(await fs.readFile(file, 'utf8')).toBe(ch.keyAuthorization);
    await chs.remove(ch);
    expect(
      await pollUntil(async () => !(await fs.stat(file).catch(() => undefined)), { attempts: 100 }),
    ).toBe(true);
  });

  it('waitConfirmed names the live node that did not write the token', async () => {
    const p = await node('p');
    await p.sync.start();
    // q heartbeats (is live) but runs no sync: it never writes tokens.
    const q = await node('q');
    await q.h.store.q(
      "INSERT INTO nodes (node, host, pid, started_at) VALUES ('q', 'h', 1, now()) ON CONFLICT (node) DO UPDATE SET last_seen = now()",
    );
    const chs = new ClusterChallenges(p.h.store, { liveWithinMs: 60_000, confirmTimeoutMs: 1500 });
    const ch: ChallengeInput = {
      certName: 'nq',
      domain: 'nq.example.com',
      wildcard: false,
      type: 'http-01',
      token: randomBytes(24).toString('base64url'),
      keyAuthorization: `${randomBytes(24).toString('base64url')}.abc`,
      dnsRecordName: '',
      dnsValue: '',
    };
    await chs.publish(ch);
    await expect(chs.waitConfirmed([ch])).rejects.toMatchObject({
      code: 'CK_ERR_CLUSTER_TOKEN',
      message: expect.stringMatching(/\bnode q before/),
    });
  });

  it('selfCheckAddresses: every listed listener must answer the token, or the CA is not asked', async () => {
    const x = await node('sc');
    const ch: ChallengeInput = {
      certName: 'sc',
      domain: 'sc.example.com',
      wildcard: false,
      type: 'http-01',
      token: randomBytes(24).toString('base64url'),
      keyAuthorization: `${randomBytes(24).toString('base64url')}.k`,
      dnsRecordName: '',
      dnsValue: '',
    };
    const seenHosts: string[] = [];
    const good = createServer((req, res) => {
      seenHosts.push(String(req.headers.host));
      res.end(req.url?.endsWith(ch.token) ? ch.keyAuthorization : 'no');
    });
    const bad = createServer((_req, res) => {
      res.statusCode = 404;
      res.end('not here');
    });
    await new Promise<void>((r) => good.listen(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', () => r()));
    const port = (srv: typeof good) => (srv.address() as { port: number }).port;
    try {
      const ok = new ClusterChallenges(x.h.store, {
        liveWithinMs: 60_000,
        selfCheckAddresses: [`127.0.0.1:${port(good)}`],
      });
      await ok.checkAddresses([ch]);
      expect(seenHosts[0]).toBe('sc.example.com');
      const ko = new ClusterChallenges(x.h.store, {
        liveWithinMs: 60_000,
        selfCheckAddresses: [`127.0.0.1:${port(good)}`, `127.0.0.1:${port(bad)}`],
      });
      await expect(ko.checkAddresses([ch])).rejects.toMatchObject({
        code: 'CK_ERR_SELF_CHECK',
        message: expect.stringContaining(`127.0.0.1:${port(bad)}`),
      });
    } finally {
      good.close();
      bad.close();
    }
  });
});
