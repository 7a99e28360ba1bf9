import type { Logger } from '../log.js';

/** One challenge of one authorization, computed by the core; solvers get no ACME objects. */
export interface ChallengeInput {
  certName: string;
  /** Identifier without the wildcard prefix ("example.com" for "*.example.com"). */
  domain: string;
  wildcard: boolean;
  type: 'http-01' | 'dns-01';
  token: string;
  /** http-01: the file content. dns-01: the key authorization the digest was made from. */
  keyAuthorization: string;
  /** dns-01 only: `_acme-challenge.<domain>` without a trailing dot. */
  dnsRecordName: string;
  /** dns-01 only: base64url(SHA-256(keyAuthorization)), the TXT value. */
  dnsValue: string;
}

/** A moment no wait may pass, and why (for the error that says which wait ran out). */
export interface WaitDeadline {
  /** Epoch milliseconds. */
  at: number;
  /** E.g. "the CA's authorizations expire at 2026-12-01T10:00:00Z". */
  reason: string;
  /** What to do when a wait runs into it (default: about the order timeout). */
  hint?: string;
}

export interface SolverContext {
  logger: Logger;
  signal?: AbortSignal;
  /**
   * The order's hard deadline: the earliest expiry of its pending authorizations (short with the tlsserver and
   * shortlived profiles: an hour). Propagation waits are clamped to it (see clampWait).
   */
  deadline?: WaitDeadline;
}

/**
 * A solver's own wait (`timeoutMs` from now) clamped to the order's deadline. `cutBy` is set when the deadline is
 * the nearer bound, so a timeout can say that the authorization, not the configured timeout, ran out.
 */
export function clampWait(
  timeoutMs: number,
  deadline: WaitDeadline | undefined,
  now = Date.now(),
): { until: number; cutBy?: string } {
  const own = now + timeoutMs;
  if (!deadline || deadline.at >= own) return { until: own };
  return { until: deadline.at, cutBy: deadline.reason };
}

/**
 * lego's challenge.Provider: present, then clean up whatever happened. A solver that can batch
 * (Route53: one ChangeBatch per zone) implements presentAll/cleanupAll and gets every challenge of
 * one order at once; the pipeline prefers those when present.
 */
export interface ChallengeSolver {
  readonly type: 'http-01' | 'dns-01';
  present(ch: ChallengeInput, ctx: SolverContext): Promise<void>;
  cleanup(ch: ChallengeInput, ctx: SolverContext): Promise<void>;
  presentAll?(chs: ChallengeInput[], ctx: SolverContext): Promise<void>;
  cleanupAll?(chs: ChallengeInput[], ctx: SolverContext): Promise<void>;
  /** Optional: confirm from outside that the challenge is visible (self-check, propagation) before the CA is asked. */
  check?(chs: ChallengeInput[], ctx: SolverContext): Promise<void>;
}

/** Settings every solver factory receives; provider folders export `create(config, deps)`. */
export interface SolverDeps {
  logger: Logger;
  /** Global self-check settings (config `selfCheck`): resolvers are "host:port" DNS servers. */
  selfCheck: { enabled: boolean; httpPort: number; resolvers?: string[]; timeoutSeconds: number };
  /**
   * DNS providers' read-modify-write of one zone's records runs inside this (a cluster passes its PostgreSQL
   * advisory lock per zone); without it, the serialisation is within this process only.
   */
  zoneLock?: <T>(zoneId: string, fn: () => Promise<T>) => Promise<T>;
}
