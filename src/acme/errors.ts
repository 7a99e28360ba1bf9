import { CertkeeperError } from '../errors.js';
import { retry } from '../platform/retry.js';
import { type AcmeProblem, parseRetryAfter, withProblemCapture } from './http.js';

const PREFIX = 'urn:ietf:params:acme:error:';

/** What to do about each RFC 8555 problem type, in one sentence. */
const HINTS: Record<string, (domain?: string) => string> = {
  rateLimited: () =>
    'the CA rate-limited this account or name; certkeeper waits and retries on its own — do not force renewals in a loop (see the CA’s rate-limit documentation)',
  badNonce: () => 'the CA kept rejecting nonces; this is transient: retry',
  unauthorized: (d) =>
    `the CA could not prove control of ${d ?? 'the name'}: make sure the challenge file or TXT record is reachable from the internet`,
  dns: (d) =>
    `the CA could not resolve ${d ?? 'the name'}: check its A/AAAA records (HTTP-01) or its zone delegation (DNS-01)`,
  connection: (d) =>
    `the CA could not connect to ${d ?? 'the name'} on port 80: open port 80, check the firewall and that the name points at this server`,
  incorrectResponse: (d) =>
    `the CA fetched something else than the challenge from ${d ?? 'the name'}: check that the webroot in the config is the folder nginx serves /.well-known/acme-challenge/ from`,
  tls: (d) =>
    `the CA hit a TLS error talking to ${d ?? 'the name'}: check the redirect to https and the certificate served there`,
  caa: (d) => `a CAA record on ${d ?? 'the name'} forbids this CA: add the CA to the CAA record or remove it`,
  rejectedIdentifier: (d) =>
    `the CA will not issue for ${d ?? 'this name'}: remove it from domains or use another CA`,
  unsupportedIdentifier: (d) => `the CA does not support the identifier ${d ?? ''}: remove it from domains`,
  externalAccountRequired: () =>
    'this CA needs External Account Binding: set acme.eab.kid and acme.eab.hmacKey from your CA account',
  accountDoesNotExist: () =>
    'the CA does not know the stored ACME account (a CA reset?); certkeeper registers a new one and retries the order once — if this still fails, check that acme.directoryUrl points at the CA you mean',
  userActionRequired: () =>
    'the CA needs you to act (often new terms of service): read the instance URL in the error and agree',
  malformed: () =>
    'the CA rejected the request as malformed: check the domain names and report a bug if they are valid',
  badCSR: () => 'the CA rejected the CSR: check keyType and domain names',
  serverInternal: () => 'the CA had an internal error: certkeeper retries later',
  orderNotReady: () => 'the order was not ready to finalize: retry',
};

export interface ProblemCarrier {
  acmeProblem?: AcmeProblem;
  acmeRetryAfter?: string;
}

export function problemType(err: unknown): string | undefined {
  const t = (err as ProblemCarrier | undefined)?.acmeProblem?.type;
  return t?.startsWith(PREFIX) ? t.slice(PREFIX.length) : t;
}

/** Turns what acme-client threw (plus the captured problem document) into an error that names domain and reason. */
export function toAcmeError(
  err: unknown,
  ctx: { cert?: string; domain?: string; action: string },
): CertkeeperError {
  if (err instanceof CertkeeperError) return err;
  const carrier = (err ?? {}) as ProblemCarrier;
  const problem = carrier.acmeProblem;
  const type = problemType(err);
  const sub = problem?.subproblems?.[0];
  const domain = ctx.domain ?? sub?.identifier?.value;
  const detail = problem?.detail ?? (err instanceof Error ? err.message : String(err));
  const retryMs = parseRetryAfter(carrier.acmeRetryAfter);
  const hint = type && HINTS[type] ? HINTS[type](domain) : networkHint(err);
  return new CertkeeperError('acme', `${ctx.action} failed${type ? ` (${type})` : ''}: ${detail}`, {
    cert: ctx.cert,
    domain,
    hint,
    code: type ? `CK_ERR_ACME_${type.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}` : 'CK_ERR_ACME',
    retryAfter: retryMs !== undefined ? new Date(Date.now() + retryMs) : undefined,
    permanent:
      type !== undefined &&
      ['rejectedIdentifier', 'unsupportedIdentifier', 'caa', 'externalAccountRequired', 'badCSR'].includes(
        type,
      ),
    cause: err,
  });
}

function networkHint(err: unknown): string {
  const code = (err as { code?: string } | undefined)?.code;
  if (
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'ETIMEDOUT' ||
    code === 'ECONNABORTED'
  ) {
    return 'the ACME directory is unreachable: check acme.directoryUrl and the network (proxy, firewall, DNS)';
  }
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return "the CA's HTTPS certificate is not trusted: for a private or test CA, set acme.caBundle to its root certificate";
  }
  return 'see the message; run with LOG_LEVEL=debug for the full exchange';
}

const BAD_NONCE_RETRIES = 10;

/**
 * Every call to the CA goes through here: the problem document is captured, badNonce is retried (on top of
 * acme-client's own 5 retries) and any failure becomes a CertkeeperError naming the action, certificate and domain.
 */
export async function callAcme<T>(
  action: string,
  ctx: { cert?: string; domain?: string },
  fn: () => Promise<T>,
): Promise<T> {
  try {
    // A fresh nonce comes with the failed answer: try again at once.
    return await retry(() => withProblemCapture(fn), {
      delaysMs: Array.from({ length: BAD_NONCE_RETRIES }, () => 0),
      retryable: (err) => problemType(err) === 'badNonce',
    });
  } catch (err) {
    throw toAcmeError(err, { ...ctx, action });
  }
}
