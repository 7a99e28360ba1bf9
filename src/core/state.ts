import type { KeyType } from './keys.js';

export interface AttemptRecord {
  at: string;
  result: 'success' | 'failure' | 'skipped';
  /** One-line reason (failure) or what was done (success). */
  message?: string;
  code?: string;
  /** One line: what to do about a failure. */
  hint?: string;
  /** The failure cannot be fixed by retrying (configuration, CA refusal): it waits long and alerts once a day. */
  permanent?: boolean;
  durationMs?: number;
}

export interface AriWindow {
  start: string;
  end: string;
  explanationUrl?: string;
  /** When to ask the CA again (Retry-After of the renewalInfo response). */
  nextCheckAt?: string;
  /** A random moment inside the window, chosen once per window. */
  selectedAt?: string;
  fetchedAt: string;
}

/** Alerts already sent for this certificate ("already told"), so CLI runs and the daemon repeat at most daily. */
export interface AlertMemory {
  /** Per alert key (e.g. "failure", "expiring"): when it was last sent, and for what. */
  [key: string]: { at: string; what?: string } | undefined;
}

/** Per-certificate state, `<storage>/state/<name>.json`. Everything optional: adopted certificates start empty. */
export interface CertState {
  name: string;
  domains?: string[];
  keyType?: KeyType;
  /** ACME profile the live certificate was ordered under (undefined: the CA's default). */
  profile?: string;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  version?: number;
  issuedAt?: string;
  /** True while the live files are a self-signed bootstrap placeholder. */
  placeholder?: boolean;
  lastAttempt?: AttemptRecord;
  lastSuccess?: string;
  /** Consecutive failures, for backoff. Reset on success. */
  failures?: number;
  /** Earliest time of the next automatic attempt after a failure. */
  nextAttemptAfter?: string;
  ari?: AriWindow;
  /** Serial of a certificate revoked through `certkeeper revoke`; the plan re-issues while it is live. */
  revokedSerial?: string;
  /**
   * Intent written before live/ is switched: this serial must be deployed. Cleared (set to undefined) once a deploy
   * round for it succeeded; a run that finds it set deploys again, whatever the plan says.
   */
  pendingDeploy?: { serial: string; at: string };
  /** Result of the last deploy/verify round: ok false means "renewed but not deployed". */
  lastDeploy?: {
    at: string;
    ok: boolean;
    serial?: string;
    results: { deployer: string; ok: boolean; detail: string; hint?: string }[];
  };
  /** Free-form per-deployer state, e.g. { "acm:us-east-1": { arn } }. */
  deploy?: Record<string, unknown>;
  /** Alerts already sent (see AlertMemory). */
  alerts?: AlertMemory;
}
