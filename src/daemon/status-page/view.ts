/**
 * The status page's data, gathered from what the daemon holds in memory (state cache, jobs, ACM audit, watcher).
 * Carries what GET /v1/certificates and GET /v1/acm/findings already show — no keys, tokens or hook output.
 */

import type { Finding } from '../../deploy/acm/audit.js';
import type { StatusRow } from '../../plan/status-row.js';
import type { EndpointStatus, ServedStatus, Watcher } from '../../watch/watcher.js';
import type { AcmAuditor, AuditRun } from '../acm-audit.js';
import type { CachedCert, StateCache } from '../cache.js';
import type { JobQueue } from '../queue.js';
import { deployedOf, type IssuerCache, profileOf, type RenewalClock } from './model.js';

export interface CertView {
  row: StatusRow;
  profile?: string;
  keyType?: string;
  issuer?: string;
  notBefore?: string;
  plannedRenewal?: string;
  /** Why /readyz counts it as a problem (missing, placeholder, expired, danger window). */
  problem?: string;
  deployed?: boolean;
  /** The fix for the last failure (from the state, else from the job that failed). */
  lastHint?: string;
  deployers: { label: string; ok?: boolean; detail?: string }[];
  served: ServedStatus[];
}

export interface StatusView {
  version: string;
  now: string;
  ready: boolean;
  shuttingDown: boolean;
  /** Renew buttons work here (the main API listener); the read-only listener shows none. */
  canRenew: boolean;
  /** POST /v1/renew needs the API token (one is set); without one it is open to loopback only. */
  tokenRequired: boolean;
  certificates: CertView[];
  audit?: { regions: string[]; lastRun?: AuditRun; nextRunAt?: string; findings: Finding[] };
  endpoints: EndpointStatus[];
}

export interface ViewSources {
  cache: StateCache;
  queue: JobQueue;
  auditor?: AcmAuditor;
  watcher?: Watcher;
  clock: RenewalClock;
  issuers?: IssuerCache;
  now: Date;
  version: string;
  shuttingDown: boolean;
  canRenew: boolean;
  tokenRequired: boolean;
}

function deployerLabel(d: NonNullable<CachedCert['config']>['deploy'][number]): string {
  if (d.type === 'acm') return `acm (${d.region})`;
  if (d.docker) return `nginx (docker ${'container' in d.docker ? d.docker.container : d.docker.label})`;
  if (d.signal) return `nginx (pid file ${d.signal.pidFile})`;
  return `nginx (${d.command?.join(' ') ?? 'command'})`;
}

export async function buildStatusView(src: ViewSources): Promise<StatusView> {
  const { cache, now } = src;
  const entries = cache.all();
  await src.issuers?.fill(entries);
  // The newest failed result per certificate carries the fix (hint); state keeps only the message.
  const hints = new Map<string, string>();
  for (const job of src.queue.list()) {
    for (const r of job.results ?? []) {
      const hint = r.error?.hint;
      if (r.status === 'failed' && typeof hint === 'string' && !hints.has(r.name)) hints.set(r.name, hint);
    }
  }
  const served = [...(src.watcher?.served.values() ?? [])];
  const certificates = cache.rows(now).map((row): CertView => {
    const e = cache.get(row.name)!;
    const last = e.state?.lastDeploy;
    const deployers = (e.config?.deploy ?? []).map((d, i) => {
      const label = deployerLabel(d);
      const r = last?.results[i];
      return { label, ok: r?.ok, detail: r?.detail };
    });
    const planned = src.clock.plannedAt(e, now);
    return {
      row,
      profile: profileOf(e),
      keyType: e.state?.keyType ?? e.live?.keyType ?? e.config?.keyType,
      issuer: src.issuers?.get(e),
      notBefore: e.live?.notBefore.toISOString(),
      plannedRenewal: planned?.toISOString(),
      problem: row.configured && !row.ready ? row.problem : undefined,
      deployed: deployedOf(e),
      lastHint:
        row.lastAttempt?.result === 'failure' ? (row.lastAttempt.hint ?? hints.get(row.name)) : undefined,
      deployers,
      served: served.filter((s) => s.cert === row.name),
    };
  });
  const a = src.auditor;
  return {
    version: src.version,
    now: now.toISOString(),
    ready: !src.shuttingDown && certificates.every((c) => !c.row.configured || !c.problem),
    shuttingDown: src.shuttingDown,
    canRenew: src.canRenew,
    tokenRequired: src.tokenRequired,
    certificates,
    audit: a && {
      regions: a.regions,
      lastRun: a.lastRun,
      nextRunAt: a.nextRunAt?.toISOString(),
      findings: a.findings,
    },
    endpoints: [...(src.watcher?.endpoints.values() ?? [])],
  };
}
