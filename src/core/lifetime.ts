/**
 * The lifetime-relative rules, pure and in one place: when to renew, the danger window, the failure backoff.
 * Let's Encrypt asks clients to renew at about 2/3 of the lifetime (1/2 for certificates shorter than 10 days)
 * unless ARI says otherwise, and to back off 1 min → 10 min → 100 min → daily.
 */
import type { LiveSummary } from './certificate.js';

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

const SHORT_LIVED_MS = 10 * DAY;

/** Whole days left until notAfter (negative once expired); the one place "days left" is computed. */
export function daysLeft(notAfter: Date, now: Date): number {
  return Math.floor((notAfter.getTime() - now.getTime()) / DAY);
}

export function lifetimeMs(live: Pick<LiveSummary, 'notBefore' | 'notAfter'>): number {
  return Math.max(0, live.notAfter.getTime() - live.notBefore.getTime());
}

/** Fraction of the lifetime left at which renewal starts: the configured one, else 1/3 (1/2 under 10 days). */
export function renewFraction(lifetime: number, configured?: number): number {
  if (configured !== undefined) return configured;
  return lifetime < SHORT_LIVED_MS ? 1 / 2 : 1 / 3;
}

/** When the expiry rule makes a certificate due: notAfter − fraction × lifetime. */
export function expiryRenewAt(notBefore: Date, notAfter: Date, fraction: number): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - lifetime * fraction);
}

export interface WindowOptions {
  /** Configured renewBeforeFraction (certificate or renewal section); undefined: lifetime-based default. */
  renewBeforeFraction?: number;
  /** renewal.dangerDays: the danger window is never longer than this (default: no cap). */
  dangerDays?: number;
}

/** The windows of one live certificate: renewal starts at renewAt; the danger window (alerts, /readyz) at dangerAt. */
export function windows(
  live: Pick<LiveSummary, 'notBefore' | 'notAfter'>,
  opts: WindowOptions,
): { lifetime: number; fraction: number; renewAt: Date; emergencyAt: Date; dangerAt: Date } {
  const lifetime = lifetimeMs(live);
  const fraction = renewFraction(lifetime, opts.renewBeforeFraction);
  const renewAt = expiryRenewAt(live.notBefore, live.notAfter, fraction);
  // Half the renewal margin left: the CA's window no longer wins, and the certificate is in danger.
  const emergencyAt = expiryRenewAt(live.notBefore, live.notAfter, fraction / 2);
  const dangerMs = Math.min((lifetime * fraction) / 2, (opts.dangerDays ?? Number.POSITIVE_INFINITY) * DAY);
  const dangerAt = new Date(live.notAfter.getTime() - dangerMs);
  return { lifetime, fraction, renewAt, emergencyAt, dangerAt };
}

/** Front-loaded backoff steps: 1 min, 10 min, 100 min, then daily. */
const STEPS = [MINUTE, 10 * MINUTE, 100 * MINUTE, DAY];

/**
 * The wait before the next automatic attempt after `failures` consecutive failures. Capped relative to the
 * lifetime (1/24 of it, at most a day, at least 5 s) so a 6-day certificate is retried every few hours and a
 * 90-day one at most daily. Permanent errors (retrying cannot help) wait the cap at once. A CA's Retry-After
 * wins when later.
 */
export function backoffMs(failures: number, opts: { lifetime?: number; permanent?: boolean } = {}): number {
  const cap = opts.lifetime ? Math.min(DAY, Math.max(5000, opts.lifetime / 24)) : DAY;
  if (opts.permanent) return cap;
  const step = STEPS[Math.min(STEPS.length - 1, Math.max(0, failures - 1))]!;
  return Math.min(step, cap);
}

export function nextAttemptAfter(
  failures: number,
  now: Date,
  opts: { retryAfter?: Date; lifetime?: number; permanent?: boolean } = {},
): Date {
  const at = new Date(now.getTime() + backoffMs(failures, opts));
  return opts.retryAfter && opts.retryAfter > at ? opts.retryAfter : at;
}
