import type { KeyType } from '../config/schema.js';

export interface AttemptRecord {
  at: string;
  result: 'success' | 'failure' | 'skipped';
  /** One-line reason (failure) or what was done (success). */
  message?: string;
  code?: string;
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
  /** Result of the last deploy/verify round: ok false means "renewed but not deployed". */
  lastDeploy?: {
    at: string;
    ok: boolean;
    serial?: string;
    results: { deployer: string; ok: boolean; detail: string }[];
  };
  /** Free-form per-deployer state, e.g. { "acm:us-east-1": { arn } }. */
  deploy?: Record<string, unknown>;
}
