import type { EventEmitter } from 'node:events';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AcmeRequestEvent } from '../acme/events.js';
import type { CertEvent } from '../renew.js';
import type { AcmAuditor } from './acm-audit.js';
import type { StateCache } from './cache.js';

/**
 * Prometheus metrics on a registry of their own (tests and several daemons in one process do not collide).
 * Certificate gauges are computed at scrape time from the in-memory state; counters follow the pipeline's events
 * and acme-client's requests. Names follow cert-manager's where one exists, so dashboards carry over.
 */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly renewals: Counter<'name' | 'result'>;
  readonly acmeRequests: Counter<'endpoint' | 'status'>;
  private readonly acmeDuration: Histogram<'endpoint'>;
  private readonly onAcme: (e: AcmeRequestEvent) => void;
  private acmeSource?: EventEmitter;

  constructor(cache: StateCache, now: () => Date, opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'certkeeper_certificate_expiration_timestamp_seconds',
      help: 'The date after which the live certificate expires (notAfter), as a Unix timestamp.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        for (const e of cache.all()) if (e.live) this.set({ name: e.name }, e.live.notAfter.getTime() / 1000);
      },
    });
    new Gauge({
      name: 'certkeeper_certificate_renewal_timestamp_seconds',
      help: 'When certkeeper will next try to renew the certificate (now when due), as a Unix timestamp.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        const t = now();
        for (const e of cache.all()) {
          const p = cache.plan(e, t);
          if (!p) continue;
          const at = p.due ? t : p.renewAt;
          if (at) this.set({ name: e.name }, Math.floor(at.getTime() / 1000));
        }
      },
    });
    new Gauge({
      name: 'certkeeper_certificate_ready_status',
      help: '1 when the live certificate is valid and outside its danger window (half the renewal margin, at most renewal.dangerDays), else 0.',
      labelNames: ['name'],
      registers,
      collect() {
        this.reset();
        const t = now();
        for (const e of cache.all())
          if (e.config) this.set({ name: e.name }, problemOf(cache, e.name, t) ? 0 : 1);
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
