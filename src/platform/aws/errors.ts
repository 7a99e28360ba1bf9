import { CertkeeperError } from '../../errors.js';

/**
 * The one AWS error vocabulary (Route53, ACM, and the credential chain in front of them): what an SDK error is
 * called, and whether it is throttling, a network hiccup, missing/bad credentials, a denial, or permanent.
 */
interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'PriorRequestNotComplete',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);
export const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'TimeoutError',
]);
export const BAD_CREDENTIALS = new Set([
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidSignatureException',
  'IncompleteSignature',
]);
/** The SDK found no credentials at all (no env, profile, role). */
export const NO_CREDENTIALS = 'CredentialsProviderError';
export const ACCESS_DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'AccessDeniedFault']);

/** Names for requests that will fail the same way next time (besides denials and bad credentials). */
const PERMANENT = new Set([
  'ValidationException',
  'InvalidArnException',
  'InvalidParameterException',
  'InvalidArgsException',
  'InvalidTagException',
  'TooManyTagsException',
  'TagPolicyException',
  'ResourceNotFoundException',
  'LimitExceededException',
  'NoSuchHostedZone',
  'InvalidChangeBatch',
  'InvalidInput',
]);

export function awsErrorName(err: unknown): string {
  const e = err as AwsLikeError | undefined;
  return e?.name ?? e?.code ?? 'Error';
}

/** "Name: message" (or the name alone when the message adds nothing), for one-line error messages. */
export function awsErrorText(err: unknown): string {
  const name = awsErrorName(err);
  return err instanceof Error && err.message && err.message !== name ? `${name}: ${err.message}` : name;
}

/** Throttling, 5xx and network errors: worth another attempt. */
export function isRetryableAwsError(err: unknown): boolean {
  const e = err as AwsLikeError | undefined;
  const name = awsErrorName(err);
  if (THROTTLING.has(name) || NETWORK.has(name) || NETWORK.has(e?.code ?? '')) return true;
  const status = e?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 500;
}

export function isPermanentAwsError(err: unknown): boolean {
  if (err instanceof CertkeeperError) return err.permanent;
  const name = awsErrorName(err);
  return (
    PERMANENT.has(name) || ACCESS_DENIED.has(name) || BAD_CREDENTIALS.has(name) || name === NO_CREDENTIALS
  );
}
