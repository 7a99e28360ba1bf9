import { mapLimit } from '../concurrency.js';
import type { CertificateConfig, Config } from '../config/schema.js';
import { type LiveSummary, summarize } from '../core/certificate.js';
import { type Health, health } from '../core/health.js';
import type { CertState } from '../core/state.js';
import { type Plan, planCertificate } from '../plan/plan.js';
import { type StatusRow, statusRow } from '../plan/status-row.js';
import type { Store } from '../store/types.js';

export type { LiveSummary } from '../core/certificate.js';

export interface CachedCert {
  name: string;
  config?: CertificateConfig;
  state?: CertState;
  live?: LiveSummary;
}

/**
 * The daemon's view of the store, kept in memory: loaded at start, refreshed for the certificates a job or an ARI
 * check touched, and fully re-read at each cron tick (to see what the CLI changed meanwhile). Reads the small state file; the PEMs only when the state does not know
 * the live certificate (adopted certbot folders), so a due-check over 10,000 certificates is pure computation.
 */
export class StateCache {
  private readonly entries = new Map<string, CachedCert>();
  private configured: Map<string, CertificateConfig>;
  private changes = 0;

  constructor(
    private readonly store: Store,
    private config: Config,
  ) {
    this.configured = new Map(config.certificates.map((c) => [c.name, c]));
  }

  /** A reloaded configuration: the next loadAll() reads the certificates it names. */
  setConfig(config: Config): void {
    this.config = config;
    this.configured = new Map(config.certificates.map((c) => [c.name, c]));
    this.changes++;
  }

  /** Changes whenever the entries or the configuration change: what is derived from them can be kept until then. */
  get version(): number {
    return this.changes;
  }

  async loadAll(): Promise<void> {
    const names = [...new Set([...this.configured.keys(), ...(await this.store.listNames())])];
    const fresh = await mapLimit(names, 32, (n) => this.read(n));
    this.entries.clear();
    for (const e of fresh) this.entries.set(e.name, e);
    this.changes++;
  }

  async refresh(names: string[]): Promise<void> {
    for (const e of await mapLimit(names, 32, (n) => this.read(n))) this.entries.set(e.name, e);
    this.changes++;
  }

  get(name: string): CachedCert | undefined {
    return this.entries.get(name);
  }

  all(): CachedCert[] {
    return [...this.entries.values()];
  }

  get dangerDays(): number {
    return this.config.renewal.dangerDays;
  }

  get size(): number {
    return this.entries.size;
  }

  private async read(name: string): Promise<CachedCert> {
    const config = this.configured.get(name);
    const state = await this.store.readState(name).catch(() => undefined);
    let live: LiveSummary | undefined;
    if (state?.serial && state.notBefore && state.notAfter && state.domains && state.keyType) {
      live = {
        serial: state.serial,
        notBefore: new Date(state.notBefore),
        notAfter: new Date(state.notAfter),
        domains: state.domains,
        keyType: state.keyType,
        ...(state.placeholder && { placeholder: true }),
      };
    } else {
      const cur = await this.store.current(name, state).catch(() => undefined);
      if (cur) live = summarize(cur);
    }
    return { name, config, state, live };
  }

  /** The scheduled plan of one certificate (backoff respected), or undefined when it is not configured. */
  plan(e: CachedCert, now: Date): Plan | undefined {
    if (!e.config) return undefined;
    return planCertificate(e.config, e.state, e.live, {
      now,
      renewBeforeFraction: this.config.renewal.renewBeforeFraction,
      respectBackoff: true,
    });
  }

  /** The one health function for a cached certificate. */
  health(e: CachedCert, now: Date): Health {
    return health(e.live, e.state, {
      now,
      dangerDays: this.config.renewal.dangerDays,
      renewBeforeFraction: e.config?.renewBeforeFraction ?? this.config.renewal.renewBeforeFraction,
    });
  }

  /** One pass over every configured certificate: which are due now, and the earliest future moment one becomes due. */
  dueCheck(now: Date): { due: string[]; next?: Date } {
    const due: string[] = [];
    let next: number | undefined;
    for (const e of this.entries.values()) {
      const p = this.plan(e, now);
      if (!p) continue;
      if (p.due) due.push(e.name);
      else if (p.renewAt && (next === undefined || p.renewAt.getTime() < next)) next = p.renewAt.getTime();
    }
    return { due, next: next === undefined ? undefined : new Date(next) };
  }

  /** Same shape as `certkeeper status --json`. */
  row(e: CachedCert, now: Date): StatusRow {
    return statusRow(e.name, e.config, e.state, e.live, this.config, now);
  }

  /** Every entry, by name. */
  sorted(): CachedCert[] {
    return [...this.entries.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  rows(now: Date): StatusRow[] {
    return this.sorted().map((e) => this.row(e, now));
  }
}
