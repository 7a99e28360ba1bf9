import type { IssuedCertificate } from '../core/certificate.js';
import type { Logger } from '../log.js';

export type { IssuedCertificate } from '../core/certificate.js';

export interface DeployContext {
  logger: Logger;
  signal?: AbortSignal;
  /** Per-deployer persistent state (e.g. an ACM ARN), kept in the certificate's state file. */
  getState<T = unknown>(key: string): T | undefined;
  setState(key: string, value: unknown): Promise<void>;
  /** Put the previous archive version back live (used when nginx -t rejects the new files). */
  rollback(): Promise<IssuedCertificate | undefined>;
}

export interface DeployResult {
  deployer: string;
  ok: boolean;
  /** One line for status/logs: what was done, or what went wrong and how to fix it. */
  detail: string;
  /** For verify-type results: the serial actually served / present at the target. */
  observedSerial?: string;
}

export interface Deployer {
  readonly name: string;
  /** Resolve with ok:false or throw a CertkeeperError('deploy'|'verify') on failure; never loses the stored certificate. */
  deploy(cert: IssuedCertificate, ctx: DeployContext): Promise<DeployResult>;
}

/** Settings every deployer factory receives; deployer folders export `create(config, deps)`. */
export interface DeployerDeps {
  logger: Logger;
}
