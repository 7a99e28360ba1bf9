/**
 * The alert rules, shared by `certkeeper renew` and the daemon, pure: from a certificate's result, state and health
 * they decide which alerts to send and what to remember ("already told", kept in the certificate's state so an
 * hourly cron repeats no more than the daemon would).
 *
 *  - success: every issued or renewed certificate that was deployed (to targets subscribed to 'success').
 *  - failure: the first failure, then again when the failure changes (another code) or a day has passed. A
 *    certificate that recovers is forgotten, so its next failure alerts at once. Permanent errors follow the
 *    same daily rule. "Someone else is renewing it" (busy) is neither.
 *  - expiring: inside the danger window (or expired) while the last attempt failed: once a day until fixed.
 */
import type { LiveSummary } from '../core/certificate.js';
import type { Health } from '../core/health.js';
import { DAY } from '../core/lifetime.js';
import type { AlertMemory, CertState } from '../core/state.js';
import type { Alert } from './types.js';

export interface RuleInput {
  name: string;
  domains: string[];
  /** What this run did: undefined for a reminder check without a run (the daemon's tick). */
  result?: {
    status: string;
    reason: string;
    serial?: string;
    notAfter?: string;
    deployFailed?: boolean;
    error?: { code?: unknown; hint?: unknown; message?: unknown };
  };
  /** The state after this run's record step. */
  state: CertState | undefined;
  live: LiveSummary | undefined;
  health: Health;
  now: Date;
  jobId?: string;
}

export interface RuleOutput {
  alerts: Alert[];
  /** The new memory; undefined when unchanged. */
  memory?: AlertMemory;
}

function due(mem: AlertMemory, key: string, what: string, now: Date): boolean {
  const m = mem[key];
  if (!m) return true;
  if (m.what !== undefined && m.what !== what) return true;
  return now.getTime() - Date.parse(m.at) >= DAY;
}

export function alertsFor(input: RuleInput): RuleOutput {
  const { result, state, health, now, live } = input;
  const before = state?.alerts ?? {};
  const mem: AlertMemory = { ...before };
  const alerts: Alert[] = [];
  const at = now.toISOString();
  const base = {
    certificate: input.name,
    domains: input.domains,
    at,
    ...(input.jobId && { jobId: input.jobId }),
  };

  if (result) {
    const failed = result.status === 'failed';
    const recovered =
      !failed &&
      (result.status === 'issued' || result.status === 'renewed' || result.status === 'redeployed');
    if (failed) {
      const code = String(result.error?.code ?? 'CK_ERR_UNKNOWN');
      if (due(mem, 'failure', code, now)) {
        mem.failure = { at, what: code };
        alerts.push({
          ...base,
          event: 'failure',
          message: result.deployFailed ? result.reason : `renewal failed: ${result.reason}`,
          ...(typeof result.error?.hint === 'string' && { hint: result.error.hint }),
          code,
          ...(result.serial && { serial: result.serial }),
          ...(live && { notAfter: live.notAfter.toISOString() }),
        });
      }
    } else if (recovered) {
      delete mem.failure;
    }
    if ((result.status === 'issued' || result.status === 'renewed') && !result.deployFailed) {
      alerts.push({
        ...base,
        event: 'success',
        message: `${result.status}: serial ${result.serial}, valid until ${result.notAfter}`,
        ...(result.serial && { serial: result.serial }),
        ...(result.notAfter && { notAfter: result.notAfter }),
        ...(result.notAfter && { daysLeft: Math.floor((Date.parse(result.notAfter) - now.getTime()) / DAY) }),
      });
    }
  }

  const inDanger = health.status === 'danger' || health.status === 'expired';
  const lastFailed = state?.lastAttempt?.result === 'failure';
  if (live && inDanger && lastFailed) {
    if (due(mem, 'expiring', 'expiring', now)) {
      mem.expiring = { at, what: 'expiring' };
      const left = live.notAfter.getTime() - now.getTime();
      alerts.push({
        ...base,
        event: 'expiring',
        message: `${left <= 0 ? 'has expired' : `expires in ${health.daysLeft} days`} and the last renewal attempt failed: ${state?.lastAttempt?.message ?? 'unknown error'}`,
        ...(state?.lastAttempt?.code && { code: state.lastAttempt.code }),
        hint:
          state?.lastAttempt?.hint ??
          'fix the cause named in the message (see certkeeper status and the log), then run certkeeper renew',
        serial: live.serial,
        notAfter: live.notAfter.toISOString(),
        daysLeft: health.daysLeft,
      });
    }
  } else if (!inDanger || !lastFailed) {
    delete mem.expiring;
  }

  const changed = JSON.stringify(mem) !== JSON.stringify(before);
  return { alerts, ...(changed && { memory: mem }) };
}
