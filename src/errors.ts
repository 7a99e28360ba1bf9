/**
 * One error class per failure kind. Every error carries what it concerns (certificate, domain, field)
 * and a `hint`: one sentence telling the user what to fix. The CLI prints `message` + `hint`, the API
 * returns them as JSON, the logs carry them as fields. Never put secrets in any of these.
 */
export type ErrorKind =
  | 'config'
  | 'acme'
  | 'challenge'
  | 'self-check'
  | 'store'
  | 'deploy'
  | 'verify'
  | 'lock'
  | 'aws'
  | 'notify'
  | 'internal';

export interface ErrorDetails {
  cert?: string;
  domain?: string;
  field?: string;
  hint?: string;
  /** Stable machine-readable code, e.g. CK_ERR_SELF_CHECK. */
  code?: string;
  /** When the CA or a provider asked us to come back (Retry-After, rate limits). */
  retryAfter?: Date;
  /** True when retrying without a change of configuration cannot help. */
  permanent?: boolean;
  cause?: unknown;
}

export class CertkeeperError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly cert?: string;
  readonly domain?: string;
  readonly field?: string;
  readonly hint?: string;
  readonly retryAfter?: Date;
  readonly permanent: boolean;

  constructor(kind: ErrorKind, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CertkeeperError';
    this.kind = kind;
    this.code = details.code ?? `CK_ERR_${kind.toUpperCase().replace(/-/g, '_')}`;
    this.cert = details.cert;
    this.domain = details.domain;
    this.field = details.field;
    this.hint = details.hint;
    this.retryAfter = details.retryAfter;
    this.permanent = details.permanent ?? false;
  }

  /** The sentence a user reads: what happened, then what to do. */
  describe(): string {
    const where = [this.cert && `certificate "${this.cert}"`, this.domain && `domain ${this.domain}`]
      .filter(Boolean)
      .join(', ');
    const head = where ? `${where}: ${this.message}` : this.message;
    return this.hint ? `${head}\n  fix: ${this.hint}` : head;
  }

  toJSON(): Record<string, unknown> {
    return {
      kind: this.kind,
      code: this.code,
      message: this.message,
      ...(this.cert && { cert: this.cert }),
      ...(this.domain && { domain: this.domain }),
      ...(this.field && { field: this.field }),
      ...(this.hint && { hint: this.hint }),
      ...(this.retryAfter && { retryAfter: this.retryAfter.toISOString() }),
      ...(this.permanent && { permanent: true }),
    };
  }
}

export class ConfigError extends CertkeeperError {
  /** One line per problem, each `path: message`. */
  readonly issues: string[];
  constructor(issues: string[], details: ErrorDetails = {}) {
    super(
      'config',
      issues.length === 1
        ? issues[0]!
        : `${issues.length} problems in the configuration:\n  ${issues.join('\n  ')}`,
      details,
    );
    this.issues = issues;
  }
}

/** Wraps anything thrown into a CertkeeperError without losing the cause. */
export function asCertkeeperError(
  err: unknown,
  kind: ErrorKind = 'internal',
  details: ErrorDetails = {},
): CertkeeperError {
  if (err instanceof CertkeeperError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CertkeeperError(kind, message, { ...details, cause: err });
}
