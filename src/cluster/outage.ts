import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import type { Alert } from '../notify/types.js';

const DAY_MS = 86_400_000;

export interface OutageOptions {
  /** The store's health: false while PostgreSQL is unreachable. */
  databaseUp: () => boolean;
  /** Subscribes to health changes (PgStore.onHealth); returns the unsubscribe. */
  onHealth: (fn: (up: boolean, err?: Error) => void) => () => void;
  /** Where alerts go (the daemon's dispatcher). */
  notify: (a: Alert) => void;
  /** Called once PostgreSQL answers again: the daemon checks every certificate at once. */
  onRecovered: () => void;
  now?: () => Date;
  logger?: Logger;
}

/**
 * The daemon's view of a PostgreSQL outage. Meanwhile every node serves its local files and places no order (the
 * locks live in PostgreSQL); renewals wait for the database, which the sync loop retries with backoff, and run as
 * soon as it answers. A certificate that falls due during the outage is alerted at once — at its renewal moment,
 * well before its danger window — and again daily while the outage lasts. Nothing local is touched.
 */
export class DatabaseOutage {
  private downSince?: Date;
  private lastError?: string;
  /** name → when it was last alerted during this outage (memory only: the database is where state lives). */
  private readonly told = new Map<string, number>();
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly unsubscribe: () => void;

  constructor(private readonly o: OutageOptions) {
    this.log = o.logger ?? silentLogger;
    this.now = o.now ?? (() => new Date());
    if (!o.databaseUp()) this.downSince = this.now();
    this.unsubscribe = o.onHealth((up, err) => {
      if (!up) {
        this.downSince ??= this.now();
        this.lastError = err?.message;
        return;
      }
      const since = this.downSince;
      this.downSince = undefined;
      this.told.clear();
      if (since) {
        this.log.info(
          {
            event: 'cluster.db_recovered',
            downSeconds: Math.round((this.now().getTime() - since.getTime()) / 1000),
          },
          'PostgreSQL answers again: checking every certificate',
        );
        this.o.onRecovered();
      }
    });
  }

  get down(): boolean {
    return !this.o.databaseUp();
  }

  /** For /readyz: one line while PostgreSQL is away, undefined otherwise. */
  problem(): string | undefined {
    if (!this.down) return undefined;
    const since = this.downSince ? ` since ${this.downSince.toISOString()}` : '';
    return `PostgreSQL unreachable${since}: local certificates are served, renewals wait for the database`;
  }

  /**
   * At each due-check while the database is away: the certificates that are due cannot be renewed, so they are
   * alerted (once, then daily). Returns true when the check found the database away (the caller queues nothing).
   */
  holdDue(due: { name: string; domains: string[]; notAfter?: Date }[]): boolean {
    if (!this.down) return false;
    const now = this.now();
    for (const c of due) {
      const last = this.told.get(c.name);
      if (last !== undefined && now.getTime() - last < DAY_MS) continue;
      this.told.set(c.name, now.getTime());
      this.o.notify({
        event: 'failure',
        certificate: c.name,
        domains: c.domains,
        message: `due for renewal, but PostgreSQL is unreachable${this.downSince ? ` since ${this.downSince.toISOString()}` : ''}: renewals wait; this node keeps serving its local certificate`,
        hint: `bring the database (cluster.postgres) back or make it reachable from this node${this.lastError ? ` (${this.lastError.slice(0, 200)})` : ''}; the renewal runs as soon as it answers`,
        code: 'CK_ERR_CLUSTER_DB',
        ...(c.notAfter && {
          notAfter: c.notAfter.toISOString(),
          daysLeft: Math.floor((c.notAfter.getTime() - now.getTime()) / DAY_MS),
        }),
        at: now.toISOString(),
      });
    }
    this.log.warn(
      { event: 'cluster.renewals_wait', due: due.length },
      `PostgreSQL unreachable: ${due.length} due certificate(s) wait for the database`,
    );
    return true;
  }

  close(): void {
    this.unsubscribe();
  }
}
