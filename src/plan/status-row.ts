import type { CertificateConfig, Config } from '../config/schema.js';
import type { LiveSummary } from '../core/certificate.js';
import { type HealthStatus, health } from '../core/health.js';
import type { CertState } from '../core/state.js';
import { type Plan, planCertificate } from './plan.js';

export interface StatusRow {
  name: string;
  configured: boolean;
  domains: string[];
  serial?: string;
  notAfter?: string;
  daysLeft?: number;
  /** The live certificate's lifetime (notAfter − notBefore) in seconds: 90 days, 45, 160 hours, … */
  lifetimeSeconds?: number;
  /** ACME profile the live certificate was ordered under (state), or, before the first order, the configured one. */
  profile?: string;
  /** valid | placeholder | expired | missing | revoked */
  validity: 'valid' | 'placeholder' | 'expired' | 'missing' | 'revoked';
  /** The one health function's verdict: validity plus the renewal (expiring) and danger windows. */
  health: HealthStatus;
  /** False while the live certificate is stored but not confirmed deployed. */
  deployed: boolean;
  /** False when /readyz counts it as a problem; `problem` says why. */
  ready: boolean;
  problem?: string;
  nextRenewal?: string;
  plan?: Pick<Plan, 'due' | 'reason' | 'detail'>;
  lastAttempt?: CertState['lastAttempt'];
  lastDeploy?: CertState['lastDeploy'];
  failures?: number;
  nextAttemptAfter?: string;
}

/** One certificate's status from its config, state and live certificate; the CLI and the daemon's API share it. */
export function statusRow(
  name: string,
  cert: CertificateConfig | undefined,
  state: CertState | undefined,
  live: LiveSummary | undefined,
  config: Pick<Config, 'renewal'>,
  now: Date,
): StatusRow {
  const h = health(live, state, {
    now,
    dangerDays: config.renewal.dangerDays,
    renewBeforeFraction: cert?.renewBeforeFraction ?? config.renewal.renewBeforeFraction,
  });
  const validity: StatusRow['validity'] =
    h.status === 'danger' || h.status === 'expiring' ? 'valid' : h.status;
  const plan = cert
    ? planCertificate(cert, state, live, {
        now,
        renewBeforeFraction: config.renewal.renewBeforeFraction,
        respectBackoff: true,
      })
    : undefined;
  return {
    name,
    configured: !!cert,
    domains: cert?.domains ?? live?.domains ?? [],
    serial: live && h.status !== 'placeholder' ? live.serial : undefined,
    notAfter: live?.notAfter.toISOString(),
    daysLeft: h.daysLeft,
    ...(h.lifetimeMs !== undefined && { lifetimeSeconds: Math.round(h.lifetimeMs / 1000) }),
    ...(profileOf(live, state, cert) && { profile: profileOf(live, state, cert) }),
    validity,
    health: h.status,
    deployed: h.deployed,
    ready: h.ready,
    ...(h.problem && { problem: h.problem }),
    nextRenewal: plan ? (plan.due ? now.toISOString() : plan.renewAt?.toISOString()) : undefined,
    plan: plan && { due: plan.due, reason: plan.reason, detail: plan.detail },
    lastAttempt: state?.lastAttempt,
    lastDeploy: state?.lastDeploy,
    failures: state?.failures,
    nextAttemptAfter: state?.nextAttemptAfter,
  };
}

/** The live certificate's profile once one was ordered by certkeeper; before that, the configured one. */
function profileOf(
  live: LiveSummary | undefined,
  state: CertState | undefined,
  cert: CertificateConfig | undefined,
): string | undefined {
  return live && state?.issuedAt && !state.placeholder ? state.profile : cert?.profile;
}
