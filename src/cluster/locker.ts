import { hostname } from 'node:os';
import pg from 'pg';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { sleep } from '../platform/sleep.js';
import type { Lock, Locker, LockHolderInfo } from './contract.js';
import { dbError, LOCK_SPACE } from './db.js';

export interface PgLockerOptions {
  url: string;
  node: string;
  /** A holder silent for this long loses its session and with it the lock (idle_session_timeout). */
  leaseSeconds?: number;
  logger?: Logger;
  /** Advisory-lock key space: certificates by default; `zone` for Route53 TXT merging. */
  space?: number;
}

/** A held advisory lock: the dedicated session that holds it, and the certificate version seen when taken. */
export interface PgLock extends Lock {
  readonly name: string;
  readonly client: pg.Client;
  /** Head version in PostgreSQL when the lock was taken (0: none); advanced by each save through this lock. */
  fence: number;
  readonly held: () => boolean;
}

const APP_PREFIX = 'certkeeper-lock';

/**
 * One issuer per certificate: `pg_try_advisory_lock` on a dedicated connection per lock. PostgreSQL releases it
 * the moment that session ends — the holder crashed, was killed, or was paused past its lease (the session is
 * ended by `idle_session_timeout` when the heartbeat stops) — so there is no stale-lock guessing. `lost` aborts
 * when the session errors or ends; PgStore writes through that same session, so a holder that lost its lock
 * cannot write.
 */
export class PgLocker implements Locker {
  private readonly leaseMs: number;
  private readonly log: Logger;
  private readonly space: number;
  /** Seconds since the epoch (no colons: it travels inside application_name). */
  private readonly startedAt = Math.floor(Date.now() / 1000);
  private readonly held = new Map<string, PgLock>();

  constructor(private readonly opts: PgLockerOptions) {
    this.leaseMs = Math.round((opts.leaseSeconds ?? 30) * 1000);
    this.log = opts.logger ?? silentLogger;
    this.space = opts.space ?? LOCK_SPACE.cert;
  }

  /** The lock this process holds for `name`, if it still holds it. */
  heldLock(name: string): PgLock | undefined {
    const l = this.held.get(name);
    return l?.held() ? l : undefined;
  }

  async tryLock(name: string): Promise<PgLock | undefined> {
    if (this.held.get(name)?.held()) return undefined; // one holder per name inside this process too
    const client = new pg.Client({
      connectionString: this.opts.url,
      application_name:
        `${APP_PREFIX}:${this.opts.node}:${hostname()}:${process.pid}:${this.startedAt}`.slice(0, 63),
      connectionTimeoutMillis: 5000,
      keepAlive: true,
    });
    const ctl = new AbortController();
    let released = false;
    client.on('error', (err) => {
      if (!released && !ctl.signal.aborted) {
        this.log.warn(
          { event: 'cluster.lock_lost', cert: name, err: err.message },
          `${name}: cluster lock lost`,
        );
        ctl.abort(lockLost(name, err.message));
      }
    });
    client.on('end', () => {
      if (!released && !ctl.signal.aborted) ctl.abort(lockLost(name, 'the session ended'));
    });
    try {
      await client.connect();
      await client.query(`SET idle_session_timeout = ${this.leaseMs}`);
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [
        this.space,
        name,
      ]);
      if (!got.rows[0]?.ok) {
        released = true;
        await client.end().catch(() => {});
        return undefined;
      }
      const v = await client
        .query<{ version: string }>('SELECT version FROM certificates WHERE name = $1', [name])
        .catch(() => ({ rows: [] as { version: string }[] })); // zone locks run before/without the schema
      const heartbeat = setInterval(
        () => {
          client.query('SELECT 1').catch(() => {});
        },
        Math.max(500, Math.floor(this.leaseMs / 3)),
      );
      heartbeat.unref();
      ctl.signal.addEventListener('abort', () => clearInterval(heartbeat), { once: true });
      const lock: PgLock = {
        name,
        client,
        fence: Number(v.rows[0]?.version ?? 0),
        lost: ctl.signal,
        held: () => !released && !ctl.signal.aborted,
        release: async () => {
          if (released) return;
          released = true;
          clearInterval(heartbeat);
          if (this.held.get(name) === lock) this.held.delete(name);
          // Ending the session releases the advisory lock; unlock first so it is gone even before the FIN.
          await client
            .query('SELECT pg_advisory_unlock($1, hashtext($2))', [this.space, name])
            .catch(() => {});
          await client.end().catch(() => {});
        },
      };
      this.held.set(name, lock);
      return lock;
    } catch (err) {
      released = true;
      await client.end().catch(() => {});
      throw dbError(err, 'take the cluster lock', name);
    }
  }

  async lock(name: string, opts: { waitMs: number; signal?: AbortSignal }): Promise<PgLock> {
    const deadline = Date.now() + opts.waitMs;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      const l = await this.tryLock(name);
      if (l) return l;
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (Date.now() + delay > deadline) break;
      await sleep(delay);
    }
    const h = await this.holder(name).catch(() => undefined);
    throw new CertkeeperError(
      'lock',
      `another certkeeper node is working on this certificate${h ? ` (node ${h.node ?? '?'}, host ${h.host}, pid ${h.pid})` : ''}`,
      {
        cert: name,
        code: 'CK_ERR_LOCKED',
        hint: 'wait for it to finish; if that node died, PostgreSQL releases its lock as soon as its session ends',
      },
    );
  }

  /** Who holds the lock now, read from PostgreSQL's own lock table (never stale). */
  async holder(name: string): Promise<LockHolderInfo | undefined> {
    const client = new pg.Client({ connectionString: this.opts.url, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const r = await client.query<{ app: string; pid: number; since: Date }>(
        `SELECT a.application_name AS app, a.pid, a.backend_start AS since
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
            AND l.classid::bigint = $1
            AND l.objid::bigint = ((hashtext($2)::bigint + 4294967296) % 4294967296)`,
        [this.space, name],
      );
      const row = r.rows[0];
      if (!row) return undefined;
      const [, node, host, pid, startedAt] = row.app.split(':');
      return {
        node,
        host: host ?? '?',
        pid: Number(pid ?? row.pid),
        startedAt: startedAt ? new Date(Number(startedAt) * 1000).toISOString() : undefined,
        // The session is dedicated to this lock: it began when the lock was taken.
        since: row.since.toISOString(),
      };
    } catch (err) {
      throw dbError(err, 'read the lock holder', name);
    } finally {
      await client.end().catch(() => {});
    }
  }
}

function lockLost(name: string, why: string): CertkeeperError {
  return new CertkeeperError('lock', `the cluster lock was lost: ${why}`, {
    cert: name,
    code: 'CK_ERR_LOCK_LOST',
    hint: 'another node may take over; nothing is written by a holder that lost its lock',
  });
}
