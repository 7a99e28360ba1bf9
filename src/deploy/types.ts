import type { KeyType } from '../config/schema.js';
import type { Logger } from '../log.js';

/** What the store hands to deployers: the files as written and what they contain. */
export interface IssuedCertificate {
  name: string;
  domains: string[];
  keyType: KeyType;
  /** Leaf only. */
  certPem: string;
  /** Intermediates only (may be empty). */
  chainPem: string;
  /** Leaf + intermediates. */
  fullchainPem: string;
  /** Unencrypted PKCS#8 PEM. Never log it. */
  keyPem: string;
  /** Upper-case hex without separators, as Node's X509Certificate prints it. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Archive version now live. */
  version: number;
  /** Absolute live paths. */
  paths: { cert: string; chain: string; fullchain: string; privkey: string };
  placeholder?: boolean;
}

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
