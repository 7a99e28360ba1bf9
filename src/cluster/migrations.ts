import type pg from 'pg';
import { dbError, LOCK_SPACE } from './db.js';

/**
 * Versioned schema migrations, append-only: never edit a released one, add the next. Every node runs
 * `migrate()` at start; a transaction-scoped advisory lock makes concurrent starts wait for each other, so each
 * migration runs exactly once and a node never sees a half-migrated schema.
 */
export const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'certificates, state, accounts, ARI, ACM, challenges, nodes',
    sql: `
CREATE TABLE certificate_versions (
  name          text        NOT NULL,
  version       bigint      NOT NULL CHECK (version > 0),
  domains       text[]      NOT NULL,
  key_type      text        NOT NULL,
  cert_pem      text        NOT NULL,
  chain_pem     text        NOT NULL,
  fullchain_pem text        NOT NULL,
  key_sealed    bytea       NOT NULL,
  serial        text        NOT NULL,
  not_before    timestamptz NOT NULL,
  not_after     timestamptz NOT NULL,
  placeholder   boolean     NOT NULL DEFAULT false,
  stored_by     text        NOT NULL,
  stored_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, version)
);
-- The head: which version is live cluster-wide. version only ever grows (compare-and-swap in PgStore.save).
CREATE TABLE certificates (
  name       text        PRIMARY KEY,
  version    bigint      NOT NULL CHECK (version > 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text        NOT NULL,
  FOREIGN KEY (name, version) REFERENCES certificate_versions (name, version)
);
CREATE TABLE certificate_state (
  name       text        PRIMARY KEY,
  state      jsonb       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ari_windows (
  name       text        PRIMARY KEY,
  ari        jsonb       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE acm_arns (
  name        text        NOT NULL,
  deploy_key  text        NOT NULL,
  value       jsonb       NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, deploy_key)
);
CREATE TABLE acme_accounts (
  directory_url text        PRIMARY KEY,
  account_url   text,
  key_sealed    bytea       NOT NULL,
  account_json  jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE challenge_tokens (
  token             text        PRIMARY KEY,
  key_authorization text        NOT NULL,
  name              text        NOT NULL,
  created_by        text        NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz NOT NULL
);
CREATE TABLE challenge_confirmations (
  token        text        NOT NULL REFERENCES challenge_tokens (token) ON DELETE CASCADE,
  node         text        NOT NULL,
  confirmed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (token, node)
);
CREATE TABLE nodes (
  node       text        PRIMARY KEY,
  host       text        NOT NULL,
  pid        integer     NOT NULL,
  started_at timestamptz NOT NULL,
  last_seen  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE node_deploys (
  node        text        NOT NULL,
  name        text        NOT NULL,
  version     bigint      NOT NULL,
  serial      text        NOT NULL,
  ok          boolean     NOT NULL,
  detail      text        NOT NULL DEFAULT '',
  deployed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (node, name)
);`,
  },
];

/** Applies the migrations this database lacks; returns the versions applied now (empty when up to date). */
export async function migrate(pool: pg.Pool, node: string): Promise<number[]> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw dbError(err, 'connect for migrations');
  }
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_SPACE.migrate]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_version (
      version    integer     PRIMARY KEY,
      name       text        NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(),
      applied_by text        NOT NULL)`);
    const have = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_version')).rows.map(
        (r) => r.version,
      ),
    );
    const newest = Math.max(0, ...have);
    const known = Math.max(...MIGRATIONS.map((m) => m.version));
    if (newest > known) {
      throw dbError(
        new Error(`the database schema is version ${newest}, this certkeeper knows up to ${known}`),
        'migrate',
      );
    }
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (have.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO schema_version (version, name, applied_by) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        node,
      ]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw dbError(err, 'migrate');
  } finally {
    client.release();
  }
}
