import { hostname } from 'node:os';
import type pg from 'pg';
import { type Logger, silentLogger } from '../log.js';
import { LOCK_SPACE, newPool, resolvePostgresUrl } from './db.js';
import { loadClusterKey } from './key.js';
import { PgLocker } from './locker.js';
import { migrate } from './migrations.js';
import { PgStore } from './pg-store.js';
import type { ClusterConfig } from './schema.js';

export interface ClusterHandle {
  store: PgStore;
  locker: PgLocker;
  /** Route53 TXT merging: one writer per zone cluster-wide. */
  zoneLocker: PgLocker;
  pool: pg.Pool;
  url: string;
  node: string;
  close(): Promise<void>;
}

/** A safe default node name from the host name. */
export function defaultNodeName(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '') || 'node'
  );
}

/**
 * Connects, migrates (safe from every node at once) and returns the cluster store. A missing/short key, an
 * unreadable urlFile or an unreachable database at start are errors naming the field; `env` is the wiring's.
 */
export async function openCluster(
  cluster: ClusterConfig,
  storagePath: string,
  { env, logger = silentLogger }: { env: Record<string, string | undefined>; logger?: Logger },
): Promise<ClusterHandle> {
  const key = await loadClusterKey(cluster, env);
  const url = await resolvePostgresUrl(cluster);
  const node = cluster.node ?? defaultNodeName();
  const pool = newPool(url, node);
  try {
    const applied = await migrate(pool, node);
    if (applied.length)
      logger.info(
        { event: 'cluster.migrated', versions: applied },
        `database schema migrated: ${applied.join(', ')}`,
      );
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  const log = logger.child({ node });
  const locker = new PgLocker({ url, node, leaseSeconds: cluster.lockLeaseSeconds, logger: log });
  const zoneLocker = new PgLocker({
    url,
    node,
    leaseSeconds: cluster.lockLeaseSeconds,
    logger: log,
    space: LOCK_SPACE.zone,
  });
  const store = new PgStore({ pool, locker, key, storagePath, node, logger: log });
  return {
    store,
    locker,
    zoneLocker,
    pool,
    url,
    node,
    close: () => pool.end().catch(() => {}),
  };
}
