import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { IssuedCertificate } from '../deploy/types.js';
import { type Logger, silentLogger } from '../log.js';
import { CERT_CHANNEL, type PgStore, TOKEN_CHANNEL } from './pg-store.js';

export interface ClusterSyncOptions {
  store: PgStore;
  url: string;
  /** Periodic version compare (covers missed notifications and reconnects). */
  intervalMs: number;
  logger?: Logger;
  /** Called after a certificate from PostgreSQL went live here: run this node's own deployers. */
  onChange?: (name: string, live: IssuedCertificate) => Promise<void>;
  /** Webroots this node serves /.well-known/acme-challenge/ from; HTTP-01 tokens of any node are written there. */
  webroots?: string[];
}

const TOKEN_RE = /^[A-Za-z0-9_-]{16,256}$/;

/**
 * Keeps one node's certbot folder in step with PostgreSQL: catch-up on start, LISTEN/NOTIFY for each commit,
 * a periodic version compare, and the HTTP-01 tokens of every node written into this node's webroots (confirmed
 * back in the database so the ordering node asks the CA only when every node answers). Work is serialised: one
 * certificate at a time goes through the store's atomic switch. PostgreSQL away: it retries with backoff and
 * touches nothing local.
 */
export class ClusterSync {
  private listener: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private chain: Promise<unknown> = Promise.resolve();
  private backoffMs = 500;
  private readonly log: Logger;
  private readonly startedAt = new Date();
  /** True while the LISTEN session is up. */
  listening = false;

  constructor(private readonly opts: ClusterSyncOptions) {
    this.log = opts.logger ?? silentLogger;
    // However a newer version went live here (this loop, or the pipeline's check under a lock), deploy it here.
    this.unsubscribe = opts.store.onMaterialised((name) => {
      void this.enqueue(() => this.changed(name));
    });
  }
  private readonly unsubscribe: () => void;

  /** A reloaded configuration's webroots (tokens written from now on go there too). */
  setWebroots(webroots: string[]): void {
    this.opts.webroots = webroots;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.listen();
    await this.enqueue(() => this.fullSync());
    await this.idle(); // the catch-up's local deploys too
    this.timer = setInterval(() => {
      void this.enqueue(() => this.fullSync());
    }, this.opts.intervalMs);
    this.timer.unref();
    // The heartbeat runs beside the queue: a node busy deploying is alive (the HTTP-01 confirmations count on it).
    this.heartbeatTimer = setInterval(
      () => {
        void this.heartbeat().catch(() => {});
      },
      Math.max(500, Math.floor(this.opts.intervalMs / 2)),
    );
    this.heartbeatTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    clearInterval(this.timer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.reconnectTimer);
    const l = this.listener;
    this.listener = undefined;
    this.listening = false;
    await l?.end().catch(() => {});
    await this.chain.catch(() => {});
  }

  /** Waits for everything queued so far (tests, shutdown). */
  idle(): Promise<void> {
    return this.chain.then(
      () => {},
      () => {},
    );
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T | undefined> {
    const run = this.chain.then(fn).catch((err: unknown) => {
      this.log.warn({ event: 'cluster.sync_failed', err: String(err) }, `cluster sync: ${String(err)}`);
      return undefined;
    });
    this.chain = run;
    return run;
  }

  private async listen(): Promise<void> {
    if (this.stopped) return;
    const c = new pg.Client({
      connectionString: this.opts.url,
      application_name: `certkeeper-sync:${this.opts.store.node}`,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
    });
    const lost = () => {
      if (this.listener !== c) return;
      this.listener = undefined;
      this.listening = false;
      c.end().catch(() => {});
      this.scheduleReconnect();
    };
    c.on('error', lost);
    c.on('end', lost);
    c.on('notification', (n) => this.onNotification(n));
    try {
      await c.connect();
      await c.query(`LISTEN ${CERT_CHANNEL}`);
      await c.query(`LISTEN ${TOKEN_CHANNEL}`);
      this.listener = c;
      this.listening = true;
      this.backoffMs = 500;
    } catch (err) {
      c.removeAllListeners('end');
      await c.end().catch(() => {});
      this.log.warn(
        { event: 'cluster.listen_failed', err: (err as Error).message },
        'cannot LISTEN; retrying',
      );
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    this.reconnectTimer = setTimeout(async () => {
      this.reconnectTimer = undefined;
      await this.listen();
      // Notifications sent while away are lost: compare versions now.
      if (this.listening) void this.enqueue(() => this.fullSync());
    }, delay);
    this.reconnectTimer.unref();
  }

  private onNotification(n: pg.Notification): void {
    let msg: { name?: string; token?: string; action?: string; node?: string };
    try {
      msg = JSON.parse(n.payload ?? '{}');
    } catch {
      return;
    }
    // This node's own save switched its files itself (a crash before that is caught by the periodic compare).
    if (n.channel === CERT_CHANNEL && typeof msg.name === 'string' && msg.node !== this.opts.store.node) {
      const name = msg.name;
      void this.enqueue(() => this.syncOne(name));
    } else if (n.channel === TOKEN_CHANNEL && typeof msg.token === 'string' && TOKEN_RE.test(msg.token)) {
      const token = msg.token;
      if (msg.action === 'remove') void this.removeToken(token);
      else void this.writeTokens([token]);
    }
  }

  private async syncOne(name: string): Promise<void> {
    await this.opts.store.materialise(name);
  }

  private async changed(name: string): Promise<void> {
    const live = await this.opts.store.current(name);
    if (live && this.opts.onChange) await this.opts.onChange(name, live);
  }

  private async heartbeat(): Promise<void> {
    const s = this.opts.store;
    await s.q(
      `INSERT INTO nodes (node, host, pid, started_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (node) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, started_at = EXCLUDED.started_at,
         last_seen = now()`,
      [s.node, hostname(), process.pid, this.startedAt],
      'node heartbeat',
    );
  }

  /** Catch-up: heartbeat, every certificate newer in PostgreSQL, every open token. */
  async fullSync(): Promise<string[]> {
    const s = this.opts.store;
    await this.heartbeat();
    const changed = await s.syncAll();
    const open = await s.q<{ token: string }>(
      `SELECT t.token FROM challenge_tokens t WHERE t.expires_at > now()
          AND NOT EXISTS (SELECT 1 FROM challenge_confirmations c WHERE c.token = t.token AND c.node = $1)`,
      [s.node],
      'list tokens',
    );
    if (open.rows.length) await this.writeTokens(open.rows.map((r) => r.token));
    return changed;
  }

  private async writeTokens(tokens: string[]): Promise<void> {
    const s = this.opts.store;
    const roots = this.opts.webroots ?? [];
    try {
      const r = await s.q<{ token: string; key_authorization: string }>(
        'SELECT token, key_authorization FROM challenge_tokens WHERE token = ANY($1) AND expires_at > now()',
        [tokens],
        'read tokens',
      );
      for (const row of r.rows) {
        if (!TOKEN_RE.test(row.token) || !/^[A-Za-z0-9_.-]{1,512}$/.test(row.key_authorization)) continue;
        try {
          for (const root of roots) {
            const dir = join(root, '.well-known', 'acme-challenge');
            await fs.mkdir(dir, { recursive: true, mode: 0o755 });
            await fs.writeFile(join(dir, row.token), row.key_authorization, { mode: 0o644 });
          }
          // The token may be gone already (its order finished): then there is nothing to confirm.
          await s.q(
            `INSERT INTO challenge_confirmations (token, node)
             SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM challenge_tokens WHERE token = $1)
             ON CONFLICT DO NOTHING`,
            [row.token, s.node],
            'confirm token',
          );
        } catch (err) {
          this.log.warn(
            { event: 'cluster.token_failed', err: String(err) },
            'cannot write an HTTP-01 token here',
          );
        }
      }
    } catch (err) {
      this.log.warn({ event: 'cluster.token_failed', err: String(err) }, 'cannot write HTTP-01 tokens here');
    }
  }

  private async removeToken(token: string): Promise<void> {
    for (const root of this.opts.webroots ?? []) {
      await fs.rm(join(root, '.well-known', 'acme-challenge', token), { force: true }).catch(() => {});
    }
  }
}
