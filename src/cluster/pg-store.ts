import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { accountDir } from '../acme/account.js';
import { certInfo, splitPemChain } from '../crypto/pem.js';
import type { IssuedCertificate } from '../deploy/types.js';
import { CertkeeperError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { readIfExists, writeFileAtomic } from '../store/fsutil.js';
import type { CertState } from '../store/state.js';
import { CertStore } from '../store/store.js';
import type { SaveInput, Store } from './contract.js';
import { dbError } from './db.js';
import type { ClusterKey } from './key.js';
import type { PgLocker } from './locker.js';

export const CERT_CHANNEL = 'certkeeper_cert';
export const TOKEN_CHANNEL = 'certkeeper_token';

/** What this node last materialised from PostgreSQL: `<storage>/cluster/<name>.json`. */
interface Marker {
  version: number;
  serial: string;
  syncedAt: string;
}

interface HeadRow {
  name: string;
  version: string;
  domains: string[];
  key_type: string;
  fullchain_pem: string;
  key_sealed: Buffer;
  serial: string;
  placeholder: boolean;
}

export interface PgStoreOptions {
  pool: pg.Pool;
  locker: PgLocker;
  key: ClusterKey;
  /** This node's certbot folder: what its nginx reads. */
  storagePath: string;
  node: string;
  logger?: Logger;
}

export interface NodeDeploy {
  node: string;
  version: number;
  serial: string;
  ok: boolean;
  detail: string;
  deployedAt: string;
}

/**
 * PostgreSQL holds the truth; every node materialises it into its own certbot folder through CertStore (the same
 * one-rename switch). Writes of a certificate go through the session that holds its advisory lock and
 * compare-and-swap on the version: a holder that lost its lock, or was paused while another node stored a newer
 * version, fails with CK_ERR_FENCED and changes nothing. When PostgreSQL is away, reads fall back to the local
 * files (they keep being served) and writes fail as store errors, which the pipeline backs off on; nothing local
 * is deleted.
 */
export class PgStore implements Store {
  readonly local: CertStore;
  readonly locker: PgLocker;
  readonly node: string;
  private readonly pool: pg.Pool;
  private readonly key: ClusterKey;
  private readonly log: Logger;
  private up = true;
  private readonly healthListeners = new Set<(up: boolean, err?: Error) => void>();
  private readonly materialisedListeners = new Set<(name: string, version: number) => void>();

  constructor(opts: PgStoreOptions) {
    this.pool = opts.pool;
    this.locker = opts.locker;
    this.key = opts.key;
    this.local = new CertStore(opts.storagePath);
    this.node = opts.node;
    this.log = opts.logger ?? silentLogger;
  }

  /** False while the last query failed (for /readyz and metrics). */
  get databaseUp(): boolean {
    return this.up;
  }
  onHealth(fn: (up: boolean, err?: Error) => void): () => void {
    this.healthListeners.add(fn);
    return () => this.healthListeners.delete(fn);
  }
  private mark(up: boolean, err?: Error): void {
    if (up === this.up) return;
    this.up = up;
    if (up) this.log.info({ event: 'cluster.db_up' }, 'PostgreSQL reachable again');
    else
      this.log.error(
        { event: 'cluster.db_down', err: err?.message },
        'PostgreSQL unreachable: serving local files, renewals wait',
      );
    for (const fn of this.healthListeners) fn(up, err);
  }

  /**
   * Called whenever a certificate stored by another node went live in this node's folder — by whichever path
   * (the sync loop, or a check under a lock): this node's deployers must follow.
   */
  onMaterialised(fn: (name: string, version: number) => void): () => void {
    this.materialisedListeners.add(fn);
    return () => this.materialisedListeners.delete(fn);
  }

  /** A query through the pool that keeps `databaseUp` current. */
  async q<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
    what = 'query',
  ): Promise<pg.QueryResult<R>> {
    try {
      const r = await this.pool.query<R>(sql, params);
      this.mark(true);
      return r;
    } catch (err) {
      if (isConnectionError(err)) this.mark(false, err as Error);
      throw dbError(err, what);
    }
  }

  async listNames(): Promise<string[]> {
    try {
      const r = await this.q<{ name: string }>(
        'SELECT name FROM certificates UNION SELECT name FROM certificate_state ORDER BY 1',
      );
      return r.rows.map((x) => x.name);
    } catch {
      return this.local.listNames();
    }
  }

  /** What this node serves, after catching up with PostgreSQL when it is ahead (or the local files when away). */
  async current(name: string, state?: CertState): Promise<IssuedCertificate | undefined> {
    await this.materialise(name).catch((err: unknown) =>
      this.log.warn(
        { event: 'cluster.sync_failed', cert: name, err: String(err) },
        `${name}: serving local files`,
      ),
    );
    const live = await this.local.current(name, state);
    const m = await this.marker(name);
    return live && m && m.serial === live.serial ? { ...live, version: m.version } : live;
  }

  /** Version of `name` in PostgreSQL (0: none). */
  async headVersion(name: string): Promise<number> {
    const r = await this.q<{ version: string }>('SELECT version FROM certificates WHERE name = $1', [name]);
    return Number(r.rows[0]?.version ?? 0);
  }

  async save(name: string, input: SaveInput): Promise<IssuedCertificate> {
    const lock = this.locker.heldLock(name);
    if (!lock) {
      throw new CertkeeperError('lock', 'refusing to store a certificate without holding its cluster lock', {
        cert: name,
        code: 'CK_ERR_LOCK_LOST',
        hint: 'the lock was lost (PostgreSQL ended the session); another node takes over, nothing was written',
      });
    }
    const blocks = splitPemChain(input.fullchainPem);
    if (blocks.length === 0) {
      throw new CertkeeperError('store', 'the CA returned no PEM certificate', { cert: name });
    }
    const info = certInfo(blocks[0]!);
    const c = lock.client;
    let next: number;
    let merged: CertState;
    try {
      await c.query('BEGIN');
      const cur = Number(
        (
          await c.query<{ version: string }>('SELECT version FROM certificates WHERE name = $1 FOR UPDATE', [
            name,
          ])
        ).rows[0]?.version ?? 0,
      );
      if (cur !== lock.fence) throw fenced(name, lock.fence, cur);
      next = cur + 1;
      await c.query(
        `INSERT INTO certificate_versions (name, version, domains, key_type, cert_pem, chain_pem, fullchain_pem,
           key_sealed, serial, not_before, not_after, placeholder, stored_by)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
        [
          name,
          next,
          input.domains,
          input.keyType,
          blocks[0],
          blocks.slice(1).join(''),
          blocks.join(''),
          this.key.encrypt(input.keyPem, `${name}#${next}`),
          info.serial,
          info.notBefore,
          info.notAfter,
          input.placeholder === true,
          this.node,
        ],
      );
      const head = await c.query(
        `INSERT INTO certificates (name, version, updated_by) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, updated_at = now(), updated_by = EXCLUDED.updated_by
         WHERE certificates.version = $4`,
        [name, next, this.node, cur],
      );
      if (head.rowCount !== 1) throw fenced(name, cur, -1);
      merged = await this.mergeState(c, name, {
        domains: input.domains,
        keyType: input.keyType,
        serial: info.serial,
        notBefore: info.notBefore.toISOString(),
        notAfter: info.notAfter.toISOString(),
        version: next,
        issuedAt: new Date().toISOString(),
        placeholder: input.placeholder === true,
        ...input.state,
      });
      await c.query('SELECT pg_notify($1, $2)', [
        CERT_CHANNEL,
        JSON.stringify({ name, version: next, node: this.node }),
      ]);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      if (err instanceof CertkeeperError) throw err;
      throw new CertkeeperError(
        'lock',
        `could not store through the cluster lock: ${(err as Error).message}`,
        {
          cert: name,
          code: 'CK_ERR_LOCK_LOST',
          hint: 'the session holding the lock failed; nothing was written, the next run (here or on another node) retries',
          cause: err,
        },
      );
    }
    lock.fence = next;
    this.log.info(
      { event: 'cluster.stored', cert: name, version: next, serial: info.serial },
      `${name}: stored version ${next} in PostgreSQL`,
    );
    await this.writeLocal(name, next, input, info.serial);
    await this.local.writeState(name, merged).catch(() => {});
    const live = await this.current(name);
    if (!live) throw new CertkeeperError('store', `live/${name} is missing after storing`, { cert: name });
    return live;
  }

  /**
   * Puts this node's previous local version back live (a deployer here refused the new files). Local only: the
   * other nodes keep what PostgreSQL says; the failure is recorded in node_deploys.
   */
  async rollback(name: string): Promise<IssuedCertificate | undefined> {
    return this.local.rollback(name);
  }

  async readState(name: string): Promise<CertState | undefined> {
    try {
      const r = await this.q<{
        state: CertState | null;
        ari: CertState['ari'] | null;
        arns: Record<string, unknown> | null;
        has_head: boolean;
      }>(
        `SELECT s.state, w.ari,
                (SELECT jsonb_object_agg(deploy_key, value) FROM acm_arns a WHERE a.name = $1) AS arns,
                EXISTS (SELECT 1 FROM certificates c WHERE c.name = $1) AS has_head
           FROM (SELECT $1::text AS name) n
           LEFT JOIN certificate_state s ON s.name = n.name
           LEFT JOIN ari_windows w ON w.name = n.name`,
        [name],
        'read state',
      );
      const row = r.rows[0];
      // No certificate in PostgreSQL yet: this node's own files (an adopted certbot folder, a bootstrap
      // placeholder) say what is live here, with whatever PostgreSQL recorded (attempts, backoff) on top.
      const local = row?.has_head ? undefined : await this.local.readState(name);
      if (!row?.state && !row?.ari && !row?.arns) return local;
      const st: CertState = { ...localFacts(local), ...(row.state ?? { name }), name };
      if (row.ari) st.ari = row.ari;
      if (row.arns) st.deploy = { ...(st.deploy ?? {}), ...row.arns };
      return st;
    } catch (err) {
      const local = await this.local.readState(name);
      if (local) return local;
      throw err;
    }
  }

  async updateState(name: string, patch: Partial<CertState>): Promise<CertState> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      this.mark(false, err as Error);
      throw dbError(err, 'update state', name);
    }
    try {
      await client.query('BEGIN');
      const next = await this.mergeState(client, name, patch);
      await client.query('COMMIT');
      this.mark(true);
      await this.local.writeState(name, next).catch(() => {});
      return next;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      if (isConnectionError(err)) this.mark(false, err as Error);
      throw dbError(err, 'update state', name);
    } finally {
      client.release();
    }
  }

  /** Read-modify-write of the state inside the caller's transaction; ARI and ACM ARNs go to their own tables. */
  private async mergeState(c: pg.ClientBase, name: string, patch: Partial<CertState>): Promise<CertState> {
    await c.query(
      `INSERT INTO certificate_state (name, state) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
      [name, { name }],
    );
    const prev = (
      await c.query<{ state: CertState }>('SELECT state FROM certificate_state WHERE name = $1 FOR UPDATE', [
        name,
      ])
    ).rows[0]?.state;
    const ari = await c.query<{ ari: CertState['ari'] }>('SELECT ari FROM ari_windows WHERE name = $1', [
      name,
    ]);
    const arns = await c.query<{ deploy_key: string; value: unknown }>(
      'SELECT deploy_key, value FROM acm_arns WHERE name = $1',
      [name],
    );
    const full: CertState = { ...(prev ?? { name }), name };
    if (ari.rows[0]) full.ari = ari.rows[0].ari;
    if (arns.rows.length)
      full.deploy = {
        ...(full.deploy ?? {}),
        ...Object.fromEntries(arns.rows.map((r) => [r.deploy_key, r.value])),
      };
    const next: CertState = JSON.parse(JSON.stringify({ ...full, ...patch, name })) as CertState;
    const { ari: nextAri, deploy, ...rest } = next;
    const acm = Object.entries(deploy ?? {}).filter(([k]) => k.startsWith('acm'));
    const other = Object.fromEntries(Object.entries(deploy ?? {}).filter(([k]) => !k.startsWith('acm')));
    await c.query('UPDATE certificate_state SET state = $2, updated_at = now() WHERE name = $1', [
      name,
      Object.keys(other).length ? { ...rest, deploy: other } : rest,
    ]);
    if (nextAri) {
      await c.query(
        `INSERT INTO ari_windows (name, ari) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET ari = EXCLUDED.ari, updated_at = now()`,
        [name, nextAri],
      );
    } else await c.query('DELETE FROM ari_windows WHERE name = $1', [name]);
    await c.query('DELETE FROM acm_arns WHERE name = $1 AND NOT (deploy_key = ANY($2))', [
      name,
      acm.map(([k]) => k),
    ]);
    for (const [k, v] of acm) {
      await c.query(
        `INSERT INTO acm_arns (name, deploy_key, value) VALUES ($1, $2, $3)
         ON CONFLICT (name, deploy_key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
        [name, k, JSON.stringify(v)],
      );
    }
    return next;
  }

  // ---- materialisation -------------------------------------------------------------------------------------

  private markerPath(name: string): string {
    return join(this.local.root, 'cluster', `${name}.json`);
  }
  async marker(name: string): Promise<Marker | undefined> {
    const t = await readIfExists(this.markerPath(name));
    if (!t) return undefined;
    try {
      return JSON.parse(t) as Marker;
    } catch {
      return undefined;
    }
  }

  private readonly localChains = new Map<string, Promise<unknown>>();

  /** One local switch at a time per certificate (a save here and a catch-up may meet). */
  private writeLocal(name: string, version: number, input: SaveInput, serial: string): Promise<boolean> {
    const prev = this.localChains.get(name) ?? Promise.resolve();
    const run = prev.then(
      () => this.writeLocalNow(name, version, input, serial),
      () => this.writeLocalNow(name, version, input, serial),
    );
    const tail = run.catch(() => undefined);
    this.localChains.set(name, tail);
    void tail.then(() => {
      if (this.localChains.get(name) === tail) this.localChains.delete(name);
    });
    return run;
  }

  private async writeLocalNow(
    name: string,
    version: number,
    input: SaveInput,
    serial: string,
  ): Promise<boolean> {
    const m = await this.marker(name);
    if (m && m.version >= version) return false;
    const live = await this.local.current(name).catch(() => undefined);
    // Already live here (this node stored it and crashed before the marker): only the marker is missing.
    if (!live || live.serial !== serial) await this.local.save(name, input);
    await fs.mkdir(join(this.local.root, 'cluster'), { recursive: true, mode: 0o755 });
    await writeFileAtomic(
      this.markerPath(name),
      `${JSON.stringify({ version, serial, syncedAt: new Date().toISOString() } satisfies Marker)}\n`,
      0o644,
    );
    return true;
  }

  /**
   * Brings live/<name> up to PostgreSQL's head when the database is ahead of this node. Returns true when the
   * local files changed. Never deletes anything local (a certificate gone from the database stays served here).
   */
  async materialise(name: string): Promise<boolean> {
    const r = await this.q<HeadRow>(
      `SELECT v.name, v.version, v.domains, v.key_type, v.fullchain_pem, v.key_sealed, v.serial, v.placeholder
         FROM certificates c JOIN certificate_versions v ON v.name = c.name AND v.version = c.version
        WHERE c.name = $1`,
      [name],
      'read the certificate',
    );
    const row = r.rows[0];
    if (!row) return false;
    return this.materialiseRow(row);
  }

  private async materialiseRow(row: HeadRow): Promise<boolean> {
    const version = Number(row.version);
    const m = await this.marker(row.name);
    if (m && m.version >= version) return false;
    const keyPem = this.key.decrypt(row.key_sealed, `${row.name}#${version}`);
    const changed = await this.writeLocal(
      row.name,
      version,
      {
        domains: row.domains,
        keyType: row.key_type as SaveInput['keyType'],
        fullchainPem: row.fullchain_pem,
        keyPem,
        placeholder: row.placeholder,
      },
      row.serial,
    );
    if (!changed) return false;
    const st = await this.readState(row.name).catch(() => undefined);
    if (st) await this.local.writeState(row.name, st).catch(() => {});
    this.log.info(
      { event: 'cluster.materialised', cert: row.name, version, serial: row.serial },
      `${row.name}: version ${version} from PostgreSQL is live here`,
    );
    for (const fn of this.materialisedListeners) fn(row.name, version);
    return true;
  }

  /** The periodic version compare: every certificate whose head is newer than this node's copy. */
  async syncAll(): Promise<string[]> {
    const heads = await this.q<{ name: string; version: string }>(
      'SELECT name, version FROM certificates',
      [],
      'list versions',
    );
    const changed: string[] = [];
    for (const h of heads.rows) {
      const m = await this.marker(h.name);
      if (m && m.version >= Number(h.version)) continue;
      if (await this.materialise(h.name)) changed.push(h.name);
    }
    return changed;
  }

  // ---- node status -----------------------------------------------------------------------------------------

  async recordDeploy(
    name: string,
    d: { version: number; serial: string; ok: boolean; detail: string },
  ): Promise<void> {
    await this.q(
      `INSERT INTO node_deploys (node, name, version, serial, ok, detail) VALUES ($1,$2,$3,$4,$5,$6)
       ON CONFLICT (node, name) DO UPDATE SET version = EXCLUDED.version, serial = EXCLUDED.serial, ok = EXCLUDED.ok,
         detail = EXCLUDED.detail, deployed_at = now()`,
      [this.node, name, d.version, d.serial, d.ok, d.detail.slice(0, 500)],
      'record the deploy',
    );
  }

  async nodeDeploys(name: string): Promise<NodeDeploy[]> {
    return (await this.allNodeDeploys(name)).get(name) ?? [];
  }

  /** What every node deployed, per certificate (one query; `only` narrows it to one name). */
  async allNodeDeploys(only?: string): Promise<Map<string, NodeDeploy[]>> {
    const r = await this.q<{
      name: string;
      node: string;
      version: string;
      serial: string;
      ok: boolean;
      detail: string;
      deployed_at: Date;
    }>(
      `SELECT name, node, version, serial, ok, detail, deployed_at FROM node_deploys
        WHERE $1::text IS NULL OR name = $1 ORDER BY name, node`,
      [only ?? null],
      'read the node deploys',
    );
    const out = new Map<string, NodeDeploy[]>();
    for (const x of r.rows) {
      const list = out.get(x.name) ?? [];
      list.push({
        node: x.node,
        version: Number(x.version),
        serial: x.serial,
        ok: x.ok,
        detail: x.detail,
        deployedAt: x.deployed_at.toISOString(),
      });
      out.set(x.name, list);
    }
    return out;
  }

  // ---- ACME accounts ---------------------------------------------------------------------------------------

  /**
   * The cluster's ACME account for a CA into this node's storage (`accounts/<ca>/certkeeper/`), when this node has
   * none yet: every node then orders with the one account. Returns true when it was written here.
   */
  async pullAccount(directoryUrl: string): Promise<boolean> {
    const dir = accountDir(this.local.root, directoryUrl);
    const keyPath = join(dir, 'account.key');
    const metaPath = join(dir, 'account.json');
    if ((await readIfExists(keyPath)) || (await readIfExists(metaPath))) return false;
    const r = await this.q<{ key_sealed: Buffer; account_json: Record<string, unknown> }>(
      'SELECT key_sealed, account_json FROM acme_accounts WHERE directory_url = $1',
      [directoryUrl],
      'read the ACME account',
    );
    const row = r.rows[0];
    if (!row) return false;
    const keyPem = this.key.decrypt(row.key_sealed, `account#${directoryUrl}`);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(keyPath, keyPem, 0o600);
    await writeFileAtomic(metaPath, JSON.stringify(row.account_json, null, 2));
    this.log.info(
      { event: 'cluster.account_pulled', directoryUrl },
      'using the cluster’s ACME account from PostgreSQL',
    );
    return true;
  }

  /** This node's registered ACME account into PostgreSQL, when the cluster has none for that CA yet. */
  async pushAccount(directoryUrl: string): Promise<boolean> {
    const dir = accountDir(this.local.root, directoryUrl);
    const keyPem = await readIfExists(join(dir, 'account.key'));
    const metaText = await readIfExists(join(dir, 'account.json'));
    if (!keyPem || !metaText) return false;
    let meta: { url?: string; directoryUrl?: string };
    try {
      meta = JSON.parse(metaText) as typeof meta;
    } catch {
      return false;
    }
    if (!meta.url || meta.directoryUrl !== directoryUrl) return false;
    const r = await this.q(
      `INSERT INTO acme_accounts (directory_url, account_url, key_sealed, account_json) VALUES ($1, $2, $3, $4)
       ON CONFLICT (directory_url) DO NOTHING`,
      [directoryUrl, meta.url, this.key.encrypt(keyPem, `account#${directoryUrl}`), meta],
      'store the ACME account',
    );
    return r.rowCount === 1;
  }

  /** `certkeeper export`: the database's certificates as a certbot folder (the backup path). */
  async exportTo(dir: string): Promise<string[]> {
    const r = await this.q<HeadRow>(
      `SELECT v.name, v.version, v.domains, v.key_type, v.fullchain_pem, v.key_sealed, v.serial, v.placeholder
         FROM certificates c JOIN certificate_versions v ON v.name = c.name AND v.version = c.version ORDER BY c.name`,
      [],
      'export',
    );
    const out = new CertStore(dir);
    for (const row of r.rows) {
      await out.save(row.name, {
        domains: row.domains,
        keyType: row.key_type as SaveInput['keyType'],
        fullchainPem: row.fullchain_pem,
        keyPem: this.key.decrypt(row.key_sealed, `${row.name}#${Number(row.version)}`),
        placeholder: row.placeholder,
      });
    }
    return r.rows.map((x) => x.name);
  }
}

/** What a node's own state says about its own files (attempts and backoff come from PostgreSQL only). */
function localFacts(local: CertState | undefined): Partial<CertState> {
  if (!local) return {};
  const keys = [
    'domains',
    'keyType',
    'serial',
    'notBefore',
    'notAfter',
    'version',
    'issuedAt',
    'placeholder',
  ] as const;
  return Object.fromEntries(keys.filter((k) => local[k] !== undefined).map((k) => [k, local[k]]));
}

function fenced(name: string, expected: number, found: number): CertkeeperError {
  return new CertkeeperError(
    'lock',
    `PostgreSQL has version ${found < 0 ? 'newer' : found} of this certificate, this holder expected ${expected}: not overwriting`,
    {
      cert: name,
      code: 'CK_ERR_FENCED',
      hint: 'another node stored a newer certificate while this one was paused; nothing was written',
    },
  );
}

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (!e) return false;
  if (
    typeof e.code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|57P0[1-3]|08\d\d\d)$/.test(e.code)
  )
    return true;
  return /Connection terminated|connection timeout|not queryable|Client has encountered a connection error/i.test(
    e.message ?? '',
  );
}
