import type { EventEmitter } from 'node:events';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AcmeRequestEvent } from '../acme/events.js';
import type { CertEvent } from '../renew.js';
import type { CertStore } from '../store/store.js';
import { VERSION } from '../version.js';
import type { EndpointStatus, ServedStatus, Watcher } from '../watch/watcher.js';
import type { AcmAuditor } from './acm-audit.js';
import type { CachedCert, StateCache } from './cache.js';
import { deployedOf, IssuerCache, profileOf, RenewalClock } from './status-page/model.js';

/**
 * Prometheus metrics on a registry of their own (tests and several daemons in one process do not collide).
 * Certificate gauges are computed at scrape time from the in-memory state; counters follow the pipeline's events
 * and acme-client's requests. Names follow cert-manager's where one exists, so dashboards carry over.
 */
export class DaemonMetrics {
  readonly registry = new Registry();
  /** Issuer names of live certificates (the status page shares them). */
  readonly issuers?: IssuerCache;
  /** Planned renewal moments (kept once due); the status page shares them. */
  readonly clock: RenewalClock;
  readonly renewals: Counter<'name' | 'result'>;
  readonly acmeRequests: Counter<'endpoint' | 'status'>;
  private readonly acmeDuration: Histogram<'endpoint'>;
  private readonly onAcme: (e: AcmeRequestEvent) => void;
  private acmeSource?: EventEmitter;

  constructor(
    cache: StateCache,
    now: () => Date,
    opts: {
      processMetrics?: boolean;
      store?: Pick<CertStore, 'livePaths'>;
      renewBeforeFraction?: number;
    } = {},
  ) {
    const registers = [this.registry];
    if (opts.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named *_total break the exposition rules (`promtool check metrics`); the per-type gauges stay.
      for (const n of [
        'nodejs_active_handles_total',
        'nodejs_active_requests_total',
        'nodejs_active_resources_total',
      ])
        this.registry.removeSingleMetric(n);
    }
    const clock = new RenewalClock(opts.renewBeforeFraction);
    this.clock = clock;
    const issuers = opts.store ? new IssuerCache(opts.store) : undefined;
    this.issuers = issuers;
    const live = () => cache.all().filter((e) => e.live && !e.live.placeholder && !e.state?.placeholder);
    const perCert = (
      name: string,
      help: string,
      value: (e: CachedCert, t: Date) => number | undefined,
      which: () => CachedCert[] = () => cache.all(),
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['name'],
        registers,
        collect() {
          this.reset();
          const t = now();
          for (const e of which()) {
            const v = value(e, t);
            if (v !== undefined && Number.isFinite(v)) this.set({ name: e.name }, v);
          }
        },
      });
    const seconds = (d: Date | string | undefined) =>
      d === undefined ? undefined : Math.floor(new Date(d).getTime() / 1000);
    perCert(
      'certkeeper_certificate_expiration_timestamp_seconds',
      'The date after which the live certificate expires (notAfter), as a Unix timestamp.',
      (e) => seconds(e.live?.notAfter),
    );
    perCert(
      'certkeeper_certificate_not_after_timestamp_seconds',
      "The live certificate's notAfter, as a Unix timestamp (same as the expiration timestamp; cert-manager name).",
      (e) => seconds(e.live?.notAfter),
    );
    perCert(
      'certkeeper_certificate_not_before_timestamp_seconds',
      "The live certificate's notBefore, as a Unix timestamp: with not_after, the fraction of the lifetime left.",
      (e) => seconds(e.live?.notBefore),
    );
    perCert(
      'certkeeper_certificate_renewal_timestamp_seconds',
      'When the certificate is planned to renew (1/3 of the lifetime left, or the ARI moment), as a Unix timestamp; stays at that moment once due, so time() past it means renewal is overdue.',
      (e, t) => seconds(clock.plannedAt(e, t)),
    );
    perCert(
      'certkeeper_certificate_next_attempt_timestamp_seconds',
      'After a failed attempt: the earliest moment of the next automatic attempt (failure backoff).',
      (e) => (e.config && e.state?.failures ? seconds(e.state.nextAttemptAfter) : undefined),
    );
    perCert(
      'certkeeper_certificate_last_success_timestamp_seconds',
      'When the last renewal or issuance of the certificate succeeded, as a Unix timestamp.',
      (e) => seconds(e.state?.lastSuccess),
    );
    perCert(
      'certkeeper_certificate_deployed',
      '1 when every deployer (nginx reload and verify, ACM import) succeeded for the live serial, 0 when renewed but not deployed; absent without deployers.',
      (e) => {
        const d = deployedOf(e);
        return d === undefined ? undefined : d ? 1 : 0;
      },
    );
    new Gauge({
      name: 'certkeeper_certificate_ready_status',
      help: 'The Ready condition (cert-manager style): 1 on the series whose condition (True, False, Unknown) holds. True: valid and outside its danger window (half the renewal margin, at most renewal.dangerDays); False: missing after an attempt, placeholder, expired or inside the danger window; Unknown: never attempted yet.',
      labelNames: ['name', 'condition'],
      registers,
      collect() {
        this.reset();
        const t = now();
        for (const e of cache.all()) {
          if (!e.config) continue;
          const ready = cache.health(e, t).ready;
          const cond = ready ? 'True' : !e.live && !e.state?.lastAttempt ? 'Unknown' : 'False';
          for (const c of ['True', 'False', 'Unknown'])
            this.set({ name: e.name, condition: c }, c === cond ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'certkeeper_certificate_info',
      help: 'Always 1: what the live certificate is (serial, issuer, subject alternative names, ACME profile, key type).',
      labelNames: ['name', 'serial', 'issuer', 'sans', 'profile', 'key_type'],
      registers,
      async collect() {
        this.reset();
        const certs = live();
        await issuers?.fill(certs);
        for (const e of certs) {
          this.set(
            {
              name: e.name,
              serial: e.live!.serial,
              issuer: issuers?.get(e) ?? '',
              sans: e.live!.domains.join(','),
              profile: profileOf(e) ?? '',
              key_type: e.state?.keyType ?? e.live!.keyType,
            },
            1,
          );
        }
      },
    });
    new Gauge({
      name: 'certkeeper_build_info',
      help: 'Always 1: the certkeeper version and the Node.js version running it.',
      labelNames: ['version', 'node_version'],
      registers,
      collect() {
        this.reset();
        this.set({ version: VERSION, node_version: process.version }, 1);
      },
    });
    new Gauge({
      name: 'certkeeper_certificate_consecutive_failures',
      help: 'Failed renewal attempts since the last success.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const e of cache.all()) if (e.config) this.set({ name: e.name }, e.state?.failures ?? 0);
      },
    });
    this.renewals = new Counter({
      name: 'certkeeper_renewals_total',
      help: 'Renewal attempts by result: success (stored), failure, deploy_failure (stored but not deployed), dry_run.',
      labelNames: ['name', 'result'],
      registers,
    });
    this.acmeRequests = new Counter({
      name: 'certkeeper_acme_requests_total',
      help: 'HTTP requests to the ACME server by endpoint (newOrder, finalize, …) and HTTP status (0: no answer).',
      labelNames: ['endpoint', 'status'],
      registers,
    });
    this.acmeDuration = new Histogram({
      name: 'certkeeper_acme_request_duration_seconds',
      help: 'Duration of HTTP requests to the ACME server.',
      labelNames: ['endpoint'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.onAcme = (e) => {
      this.acmeRequests.inc({ endpoint: e.endpoint, status: String(e.status) });
      this.acmeDuration.observe({ endpoint: e.endpoint }, e.durationMs / 1000);
    };
  }

  /** cluster: 1 while PostgreSQL answers, 0 while it is unreachable (local files are served, renewals wait). */
  attachCluster(databaseUp: () => boolean): void {
    new Gauge({
      name: 'certkeeper_cluster_database_up',
      help: '1 while the cluster database (PostgreSQL) answers, 0 while it is unreachable: every node keeps serving its local certificates and renewals wait.',
      registers: [this.registry],
      collect() {
        this.set(databaseUp() ? 1 : 0);
      },
    });
  }

  /**
   * The ACM audit's gauges (registered only when acmAudit is configured): findings by rule and severity from the
   * last successful run (every pair present, 0 when clean), when that run was, and failed runs.
   */
  attachAudit(auditor: AcmAuditor): void {
    const registers = [this.registry];
    new Gauge({
      name: 'certkeeper_acm_audit_findings',
      help: 'ACM certificates flagged by the last successful audit, by rule and severity (see GET /v1/acm/findings).',
      labelNames: ['rule', 'severity'],
      registers,
      collect() {
        this.reset();
        const s = auditor.summary;
        if (!s) return;
        for (const [rule, n] of Object.entries(s.counts)) {
          this.set({ rule, severity: 'critical' }, n.critical);
          this.set({ rule, severity: 'warning' }, n.warning);
        }
      },
    });
    new Gauge({
      name: 'certkeeper_acm_audit_last_run_timestamp_seconds',
      help: 'When the last successful ACM audit ran, as a Unix timestamp (absent until one succeeds).',
      registers,
      collect() {
        this.reset();
        const s = auditor.summary;
        if (s) this.set(Math.floor(s.lastSuccessAt.getTime() / 1000));
      },
    });
    new Counter({
      name: 'certkeeper_acm_audit_runs_total',
      help: 'ACM audit runs by result (success, failure: AWS API, credentials or network; see the log).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        this.inc({ result: 'success' }, auditor.runs - auditor.errors);
        this.inc({ result: 'failure' }, auditor.errors);
      },
    });
  }

  /**
   * Watched endpoints (watch:) and what the nginx verify addresses serve for certkeeper's own certificates, from
   * the watcher's last probes.
   */
  attachWatch(watcher: Watcher): void {
    const registers = [this.registry];
    const endpoint = (name: string, help: string, value: (s: EndpointStatus) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['endpoint'],
        registers,
        collect() {
          this.reset();
          for (const s of watcher.endpoints.values()) {
            if (!s.checkedAt) continue;
            const v = value(s);
            if (v !== undefined && Number.isFinite(v)) this.set({ endpoint: s.label }, v);
          }
        },
      });
    const ts = (d?: string) => (d ? Math.floor(Date.parse(d) / 1000) : undefined);
    const bool = (b?: boolean) => (b === undefined ? undefined : b ? 1 : 0);
    endpoint(
      'certkeeper_endpoint_probe_success',
      '1 when the last TLS handshake with the watched endpoint completed, else 0.',
      (s) => bool(s.reachable),
    );
    endpoint(
      'certkeeper_endpoint_probe_timestamp_seconds',
      'When the watched endpoint was last probed, as a Unix timestamp.',
      (s) => ts(s.checkedAt),
    );
    endpoint(
      'certkeeper_endpoint_certificate_expiration_timestamp_seconds',
      'notAfter of the certificate the watched endpoint serves, as a Unix timestamp.',
      (s) => ts(s.notAfter),
    );
    endpoint(
      'certkeeper_endpoint_certificate_not_before_timestamp_seconds',
      'notBefore of the certificate the watched endpoint serves, as a Unix timestamp.',
      (s) => ts(s.notBefore),
    );
    endpoint(
      'certkeeper_endpoint_certificate_trusted',
      '1 when the served chain verifies against the system roots (plus watch caFile), else 0.',
      (s) => (s.reachable ? bool(s.trusted) : undefined),
    );
    endpoint(
      'certkeeper_endpoint_certificate_name_match',
      '1 when the served certificate is valid for the SNI name (or IP address), else 0.',
      (s) => (s.reachable ? bool(s.nameMatches) : undefined),
    );
    const served = (name: string, help: string, value: (s: ServedStatus) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['name', 'address'],
        registers,
        collect() {
          this.reset();
          for (const s of watcher.served.values()) {
            const v = value(s);
            if (v !== undefined && Number.isFinite(v)) this.set({ name: s.cert, address: s.address }, v);
          }
        },
      });
    served(
      'certkeeper_certificate_served_probe_success',
      "1 when the nginx verify address answered the TLS handshake for the certificate's first name, else 0.",
      (s) => (s.error ? 0 : 1),
    );
    served(
      'certkeeper_certificate_served_serial_match',
      '1 when the nginx verify address serves the live serial from the store, 0 when it serves another.',
      (s) => bool(s.matches),
    );
    served(
      'certkeeper_certificate_served_expiration_timestamp_seconds',
      'notAfter of the certificate the nginx verify address serves, as a Unix timestamp.',
      (s) => ts(s.notAfter),
    );
  }

  /** Counts the ACME client's requests (attached when the pipeline is first loaded). */
  attachAcme(events: EventEmitter): void {
    if (this.acmeSource) return;
    this.acmeSource = events;
    events.on('request', this.onAcme);
  }

  /** Pipeline events → counters. */
  onEvent(e: CertEvent): void {
    if (e.type === 'obtained') {
      this.renewals.inc({ name: e.cert, result: e.result?.status === 'dry-run' ? 'dry_run' : 'success' });
    } else if (e.type === 'failed') {
      this.renewals.inc({ name: e.cert, result: 'failure' });
    } else if (e.type === 'deploy_failed') {
      this.renewals.inc({ name: e.cert, result: 'deploy_failure' });
    }
  }

  close(): void {
    this.acmeSource?.off('request', this.onAcme);
  }
}

/** Why a configured certificate makes the daemon "not ready", or undefined when it is fine (the one health function). */
export function problemOf(cache: StateCache, name: string, now: Date): string | undefined {
  const e = cache.get(name);
  if (!e?.config) return undefined;
  const h = cache.health(e, now);
  return h.ready ? undefined : h.problem;
}
