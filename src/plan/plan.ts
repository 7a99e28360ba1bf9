import type { CertificateConfig } from '../config/schema.js';
import type { LiveSummary } from '../core/certificate.js';
import { daysLeft, windows } from '../core/lifetime.js';
import type { CertState } from '../core/state.js';

export { expiryRenewAt, nextAttemptAfter } from '../core/lifetime.js';

export type PlanReason =
  | 'missing'
  | 'placeholder'
  | 'config-changed'
  | 'profile-changed'
  | 'revoked'
  | 'expiring'
  | 'ari-window'
  | 'emergency'
  | 'forced'
  | 'not-due'
  | 'backoff';

export interface Plan {
  name: string;
  due: boolean;
  reason: PlanReason;
  /** One line for humans: why (not) now. */
  detail: string;
  /** When this certificate becomes due by the rules (undefined when due now or nothing is live). */
  renewAt?: Date;
  notAfter?: Date;
}

export interface PlanOptions {
  now: Date;
  force?: boolean;
  /** Fraction of the lifetime left at which to renew (renewal.renewBeforeFraction); default 1/3, 1/2 under 10 days. */
  renewBeforeFraction?: number;
  /** Scheduled runs honour the failure backoff; a human's `renew` does not. */
  respectBackoff?: boolean;
}

type PlanLive = Pick<
  LiveSummary,
  'notBefore' | 'notAfter' | 'domains' | 'keyType' | 'serial' | 'placeholder'
>;

function sameSet(a: string[], b: string[]): boolean {
  const x = [...new Set(a.map((s) => s.toLowerCase()))].sort();
  const y = [...new Set(b.map((s) => s.toLowerCase()))].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * The configured ACME profile differs from the one the live certificate was ordered under (state `profile`;
 * undefined on either side means the CA's default). Returns the detail line, or undefined when unchanged.
 */
function profileChanged(cert: CertificateConfig, state: CertState | undefined): string | undefined {
  const want = cert.profile;
  const have = state?.profile;
  if (want === have) return undefined;
  return `profile changed (${have ?? 'CA default'} → ${want ?? 'CA default'})`;
}

/**
 * The rules, pure: everything they need is passed in. Each is one named step; the first that decides wins.
 * Order: nothing live → missing; placeholder; config no longer matches (domains/key type); revoked;
 * forced; then ARI's window when the CA offers one (RFC 9773), with an expiry-based emergency rule above it
 * (less than half the normal margin left); else the lifetime rule (1/3 left, 1/2 under 10 days).
 */
function planByRules(
  cert: CertificateConfig,
  state: CertState | undefined,
  live: PlanLive | undefined,
  opts: PlanOptions,
): Plan {
  const { name } = cert;
  const now = opts.now;
  const due = (reason: PlanReason, detail: string, notAfter?: Date): Plan => ({
    name,
    due: true,
    reason,
    detail,
    notAfter,
  });
  if (!live) return due('missing', 'no certificate is stored yet');
  if (state?.placeholder || live.placeholder)
    return due('placeholder', 'only the bootstrap placeholder is live', live.notAfter);
  const liveDomains = state?.domains ?? live.domains;
  if (!sameSet(liveDomains, cert.domains)) {
    return due(
      'config-changed',
      `domains changed (${liveDomains.join(', ')} → ${cert.domains.join(', ')})`,
      live.notAfter,
    );
  }
  if (state?.keyType && state.keyType !== cert.keyType) {
    return due('config-changed', `key type changed (${state.keyType} → ${cert.keyType})`, live.notAfter);
  }
  const profileChange = profileChanged(cert, state);
  if (profileChange) return due('profile-changed', profileChange, live.notAfter);
  if (state?.revokedSerial === live.serial) {
    return due('revoked', 'the live certificate was revoked', live.notAfter);
  }
  if (opts.force) return due('forced', '--force', live.notAfter);

  const w = windows(live, { renewBeforeFraction: cert.renewBeforeFraction ?? opts.renewBeforeFraction });
  const ariAt = state?.ari?.selectedAt ? new Date(state.ari.selectedAt) : undefined;
  const renewAt = ariAt && ariAt < w.emergencyAt ? ariAt : ariAt ? w.emergencyAt : w.renewAt;
  const left = daysLeft(live.notAfter, now);

  if (now >= w.emergencyAt && (!ariAt || now < ariAt)) {
    return due('emergency', `${left} days left, under half the renewal margin`, live.notAfter);
  }
  if (ariAt && now >= ariAt)
    return due('ari-window', `inside the CA's suggested renewal window (ARI)`, live.notAfter);
  if (!ariAt && now >= w.renewAt) return due('expiring', `${left} days left`, live.notAfter);
  return {
    name,
    due: false,
    reason: 'not-due',
    detail: `${left} days left; renews from ${renewAt.toISOString()}`,
    renewAt,
    notAfter: live.notAfter,
  };
}

/**
 * Decides whether one certificate is due, and why. When the failure backoff holds (`respectBackoff`: scheduled
 * runs and non-forced API triggers), it holds for every reason — also a certificate never issued, a placeholder or
 * changed domains — so a broken certificate is retried after 1 min, 10 min, 100 min, then daily (capped relative
 * to its lifetime) and not at every tick. `force` always goes ahead.
 */
export function planCertificate(
  cert: CertificateConfig,
  state: CertState | undefined,
  live: PlanLive | undefined,
  opts: PlanOptions,
): Plan {
  const plan = planByRules(cert, state, live, opts);
  if (!plan.due || opts.force || !opts.respectBackoff || !state?.nextAttemptAfter) return plan;
  const after = new Date(state.nextAttemptAfter);
  if (Number.isNaN(after.getTime()) || after <= opts.now) return plan;
  return {
    name: cert.name,
    due: false,
    reason: 'backoff',
    detail: `last attempt failed; next try after ${state.nextAttemptAfter} (${plan.detail})`,
    renewAt: after,
    notAfter: live?.notAfter,
  };
}
