import type { Route53Client } from '@aws-sdk/client-route-53';
import { CertkeeperError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { awsErrorName, BAD_CREDENTIALS, isRetryableAwsError } from '../../platform/aws/errors.js';
import { retry as retryCall } from '../../platform/retry.js';

/** What one Route53 call is about, for retries, the IAM action in errors and the log. */
export interface CallContext {
  /** IAM action without the "route53:" prefix, e.g. "ChangeResourceRecordSets". */
  action: string;
  /** IAM resource without the ARN prefix: "hostedzone/Z123", "change/C1", "*". */
  resource: string;
  cert?: string;
  domain?: string;
  logger: Logger;
  signal?: AbortSignal;
}

export interface RetryPolicy {
  /** Our own attempts on top of the SDK's retry strategy (which already retries throttling). */
  attempts: number;
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseMs: 1000, maxMs: 8000 };

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

// The one AWS error vocabulary, shared with ACM.
const errName = awsErrorName;
export const isRetryable = isRetryableAwsError;

/** Turns an SDK error into a CertkeeperError that names the IAM action and says what to fix. */
export function toAwsError(err: unknown, ctx: CallContext): CertkeeperError {
  if (err instanceof CertkeeperError) return err;
  const e = err as AwsLikeError;
  const name = errName(err);
  const status = e?.$metadata?.httpStatusCode;
  const base = { cert: ctx.cert, domain: ctx.domain, cause: err };
  const awsMessage = (e?.message ?? '').slice(0, 500);
  const arn = ctx.resource === '*' ? '*' : `arn:aws:route53:::${ctx.resource}`;
  if (name === 'AccessDenied' || name === 'AccessDeniedException' || status === 403) {
    const sts = /sts:AssumeRole/.test(awsMessage);
    const action = sts ? 'sts:AssumeRole' : `route53:${ctx.action}`;
    return new CertkeeperError(
      'aws',
      `access denied: the AWS credentials may not call ${action} on ${sts ? 'the role' : ctx.resource}`,
      {
        ...base,
        code: 'CK_ERR_AWS_ACCESS_DENIED',
        permanent: true,
        hint: sts
          ? 'allow sts:AssumeRole on challenge.roleArn for the credentials certkeeper runs with, and let the role trust them'
          : `allow "${action}" on "${arn}" in the IAM policy of the credentials certkeeper uses (README: minimal IAM policy for Route53)`,
      },
    );
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(awsMessage)) {
    return new CertkeeperError('aws', 'no AWS credentials found for Route53', {
      ...base,
      code: 'CK_ERR_AWS_CREDENTIALS',
      permanent: true,
      hint: 'provide credentials through the default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials, or an instance/container role',
    });
  }
  if (BAD_CREDENTIALS.has(name)) {
    return new CertkeeperError('aws', `AWS rejected the credentials (${name})`, {
      ...base,
      code: 'CK_ERR_AWS_CREDENTIALS',
      permanent: true,
      hint: 'the access key is wrong, disabled or expired: refresh the credentials (or the profile/role session) certkeeper runs with',
    });
  }
  if (name === 'NoSuchHostedZone') {
    return new CertkeeperError(
      'aws',
      `hosted zone ${ctx.resource.replace(/^hostedzone\//, '')} does not exist`,
      {
        ...base,
        code: 'CK_ERR_AWS_NO_SUCH_ZONE',
        permanent: true,
        hint: 'fix challenge.hostedZoneId (Route53 console → Hosted zones → Hosted zone ID), or remove it to let certkeeper find the zone',
      },
    );
  }
  if (name === 'InvalidChangeBatch' || name === 'InvalidInput') {
    return new CertkeeperError('aws', `Route53 rejected the change: ${awsMessage}`, {
      ...base,
      code: 'CK_ERR_AWS_INVALID_CHANGE',
      permanent: true,
      hint: 'check that challenge.hostedZoneId is the zone that holds this domain; if the record was edited by hand, remove stale _acme-challenge values and retry',
    });
  }
  if (isRetryable(err)) {
    return new CertkeeperError(
      'aws',
      `Route53 ${ctx.action} kept failing (${name}${status ? ` HTTP ${status}` : ''}) after retries`,
      {
        ...base,
        code: 'CK_ERR_AWS_THROTTLED',
        hint: 'Route53 allows about 5 requests per second per account: lower renewal.concurrency or spread renewals; certkeeper retries on the next run',
      },
    );
  }
  return new CertkeeperError(
    'aws',
    `Route53 ${ctx.action} failed: ${name}${awsMessage ? `: ${awsMessage}` : ''}`,
    {
      ...base,
      hint: 'see the AWS error above; check the Route53 settings of this certificate and the credentials',
    },
  );
}

/**
 * Sends one command through the SDK (its retry strategy handles throttling first), then adds our own
 * bounded, jittered retry for throttling, PriorRequestNotComplete, 5xx and network errors the SDK gave up on.
 */
export async function awsCall<T>(
  client: Route53Client,
  // biome-ignore lint/suspicious/noExplicitAny: any SDK command of this client
  command: any,
  ctx: CallContext,
  retry: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  try {
    return await retryCall(() => client.send(command, { abortSignal: ctx.signal }) as Promise<T>, {
      delaysMs: backoffDelays(retry),
      signal: ctx.signal,
      retryable: isRetryable,
      onRetry: (err, attempt, delayMs) =>
        ctx.logger.warn(
          { cert: ctx.cert, action: ctx.action, error: errName(err), attempt, delayMs: Math.round(delayMs) },
          'Route53 call failed, retrying',
        ),
    });
  } catch (err) {
    throw toAwsError(err, ctx);
  }
}

/** Exponential backoff with equal jitter: attempt n waits between half and all of min(maxMs, baseMs·2^(n-1)). */
function backoffDelays(policy: RetryPolicy): number[] {
  return Array.from({ length: Math.max(0, policy.attempts - 1) }, (_, i) => {
    const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** i);
    return cap / 2 + Math.random() * (cap / 2);
  });
}
