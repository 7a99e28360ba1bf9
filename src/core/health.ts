import type { LiveSummary } from './certificate.js';
import { DAY, daysLeft, type WindowOptions, windows } from './lifetime.js';
import type { CertState } from './state.js';

/**
 * missing: nothing live · placeholder: a bootstrap placeholder is live · expired · revoked: `certkeeper revoke`d ·
 * danger: inside the danger window (alerts fire, /readyz fails) · expiring: inside the renewal window · valid.
 */
export type HealthStatus =
  | 'missing'
  | 'placeholder'
  | 'expired'
  | 'revoked'
  | 'danger'
  | 'expiring'
  | 'valid';

export interface Health {
  status: HealthStatus;
  /** False while the live serial is stored but not confirmed deployed (pending intent or a failed deploy). */
  deployed: boolean;
  /** What /readyz and certkeeper_certificate_ready_status report. */
  ready: boolean;
  /** Why it is not ready (one line), when it is not. */
  problem?: string;
  daysLeft?: number;
  lifetimeMs?: number;
  renewAt?: Date;
  dangerAt?: Date;
}

/** The one health function: plan, status, /v1/certificates, /readyz, metrics and alerts all ask it. */
export function health(
  live: LiveSummary | undefined,
  state: CertState | undefined,
  opts: WindowOptions & { now: Date },
): Health {
  if (!live)
    return { status: 'missing', deployed: false, ready: false, problem: 'no certificate issued yet' };
  const { now } = opts;
  const deployed = isDeployed(live, state);
  const left = daysLeft(live.notAfter, now);
  if (live.placeholder || state?.placeholder) {
    return {
      status: 'placeholder',
      deployed,
      ready: false,
      problem: 'only the bootstrap placeholder is live',
      daysLeft: left,
    };
  }
  const w = windows(live, opts);
  const base = { deployed, daysLeft: left, lifetimeMs: w.lifetime, renewAt: w.renewAt, dangerAt: w.dangerAt };
  if (live.notAfter <= now) {
    return { ...base, status: 'expired', ready: false, problem: `expired at ${live.notAfter.toISOString()}` };
  }
  if (state?.revokedSerial && state.revokedSerial === live.serial)
    return { ...base, status: 'revoked', ready: true };
  if (now >= w.dangerAt) {
    const leftMs = live.notAfter.getTime() - now.getTime();
    const when = leftMs >= DAY ? `${left} days` : `${Math.max(1, Math.round(leftMs / 60_000))} minutes`;
    return {
      ...base,
      status: 'danger',
      ready: false,
      problem: `expires in ${when} (inside the danger window: the last ${fmtWindow(live.notAfter.getTime() - w.dangerAt.getTime())} of its lifetime, at most renewal.dangerDays = ${opts.dangerDays})`,
    };
  }
  if (now >= w.renewAt) return { ...base, status: 'expiring', ready: true };
  return { ...base, status: 'valid', ready: true };
}

/** The live serial counts as deployed unless an intent to deploy it is pending or its last deploy failed. */
export function isDeployed(live: Pick<LiveSummary, 'serial'>, state: CertState | undefined): boolean {
  if (state?.pendingDeploy && state.pendingDeploy.serial === live.serial) return false;
  const d = state?.lastDeploy;
  if (d && !d.ok && (d.serial === undefined || d.serial === live.serial)) return false;
  return true;
}

function fmtWindow(ms: number): string {
  if (ms >= DAY) return `${Math.round((ms / DAY) * 10) / 10} days`;
  if (ms >= 3_600_000) return `${Math.round((ms / 3_600_000) * 10) / 10} hours`;
  return `${Math.max(1, Math.round(ms / 60_000))} minutes`;
}
