import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { CertkeeperError } from '../errors.js';
import type { ClusterConfig } from './schema.js';

/** The connection URL from cluster.postgres (url or urlFile). */
export async function resolvePostgresUrl(cluster: Pick<ClusterConfig, 'postgres'>): Promise<string> {
  if (cluster.postgres.url) return cluster.postgres.url;
  const file = cluster.postgres.urlFile as string;
  try {
    const url = (await readFile(file, 'utf8')).trim();
    if (!/^postgres(ql)?:\/\//.test(url)) throw new Error('does not start with postgres://');
    return url;
  } catch (err) {
    throw new CertkeeperError(
      'config',
      `cluster.postgres.urlFile: ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        field: 'cluster.postgres.urlFile',
        hint: 'put one postgres://user:password@host:5432/db line in that file',
      },
    );
  }
}

/** What is safe to print of a URL: never the password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}

export function newPool(url: string, node: string, max = 5): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: `certkeeper:${node}`,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/** A PostgreSQL outage as a store error the pipeline backs off on. */
export function dbError(err: unknown, what: string, cert?: string): CertkeeperError {
  if (err instanceof CertkeeperError) return err;
  return new CertkeeperError('store', `PostgreSQL: ${what}: ${(err as Error).message}`, {
    cert,
    code: 'CK_ERR_CLUSTER_DB',
    hint: 'check that PostgreSQL is reachable from this node (cluster.postgres); local certificates keep being served meanwhile',
    cause: err,
  });
}

/** Advisory-lock key spaces (first int of the two-int form). */
export const LOCK_SPACE = {
  migrate: 0x636b0001,
  cert: 0x636b0002,
  zone: 0x636b0003,
  leader: 0x636b0004,
} as const;
