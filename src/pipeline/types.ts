import type { ChallengeSolver, SolverDeps } from '../challenges/types.js';
import type { CertificateConfig, ChallengeConfig, DeployConfig } from '../config/schema.js';
import type { IssuedCertificate } from '../core/certificate.js';
import type { Deployer, DeployerDeps, DeployResult } from '../deploy/types.js';
import type { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Alert } from '../notify/types.js';
import type { Plan } from '../plan/plan.js';

export type CertEventType =
  | 'planned'
  | 'obtaining'
  | 'obtained'
  | 'stored'
  | 'deployed'
  | 'deploy_failed'
  | 'failed'
  | 'skipped'
  | 'busy';

/** One event per step, from this one place; logs, metrics and alerts listen to these. */
export interface CertEvent {
  type: CertEventType;
  cert: string;
  jobId: string;
  at: Date;
  plan?: Plan;
  result?: CertResult;
  error?: CertkeeperError;
  deploy?: DeployResult[];
}

/**
 * issued / renewed: a new certificate is stored (and deployed unless deployFailed) · redeployed: a stored one was
 * deployed again · skipped: not due · busy: another process holds the lock (neither success nor failure) ·
 * failed · dry-run.
 */
export type CertStatus = 'issued' | 'renewed' | 'redeployed' | 'skipped' | 'busy' | 'failed' | 'dry-run';

export interface CertResult {
  name: string;
  status: CertStatus;
  /** Plan reason or failure summary. */
  reason: string;
  serial?: string;
  notAfter?: string;
  version?: number;
  durationMs: number;
  error?: ReturnType<CertkeeperError['toJSON']>;
  /** Set when the certificate was stored but a deployer or verification failed: "renewed but not deployed". */
  deployFailed?: boolean;
  deploy?: DeployResult[];
  timings?: Record<string, number>;
}

export interface RenewReport {
  jobId: string;
  /** False when any certificate failed (busy ones do not count). */
  ok: boolean;
  results: CertResult[];
  startedAt: string;
  finishedAt: string;
}

/** What the CA hands back for one order. */
export interface Issued {
  fullchainPem: string;
  keyPem: string;
  timings: Record<string, number>;
}

export interface IssueRequest {
  cert: CertificateConfig;
  /** ARI: the certID of the certificate this order replaces (RFC 9773 §5). */
  replaces?: string;
  logger: Logger;
  signal?: AbortSignal;
}

export interface RenewalWindow {
  start: Date;
  end: Date;
  explanationUrl?: string;
  retryAfterMs: number;
}

/** The CA behind one directory URL: orders certificates and answers ARI. The ACME issuer is the default. */
export interface Issuer {
  readonly directoryUrl: string;
  order(req: IssueRequest): Promise<Issued>;
  /** The CA's suggested renewal window for a live certificate; undefined when the CA offers no ARI. */
  renewalInfo?(
    cert: IssuedCertificate,
    ctx: { now: Date; logger: Logger },
  ): Promise<RenewalWindow | undefined>;
}

/** Checks what the CA returned before it is stored (our key, our names, valid now). */
export type Verifier = (issued: Issued, cert: CertificateConfig, now: Date) => void | Promise<void>;

/** Where alerts go: the dispatcher of the configured notify targets. Returns at once; delivery is its business. */
export interface AlertSink {
  notify(alert: Alert): void;
}

export interface Clock {
  now(): Date;
}

export type SolverFactory = (config: ChallengeConfig, deps: SolverDeps) => Promise<ChallengeSolver>;
export type DeployerFactory = (config: DeployConfig, deps: DeployerDeps) => Promise<Deployer>;
