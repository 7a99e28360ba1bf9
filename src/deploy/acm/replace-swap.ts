/**
 * Swapping an ACM certificate where AWS uses it, for `acm replace`. Each function first reads what is there and
 * changes only what still points at the old certificate, so a second run after a crash swaps nothing twice; with
 * `apply: false` it only says what it would change (the plan, and --dry-run).
 *
 * - CloudFront: GetDistributionConfig → only ViewerCertificate.ACMCertificateArn (and the deprecated Certificate
 *   field when it holds the same ARN) changes → UpdateDistribution with IfMatch; a stale ETag (412
 *   PreconditionFailed: someone else changed the distribution in between) is re-read and retried.
 * - ELBv2 (ALB/NLB): each HTTPS/TLS listener of the load balancer; the default certificate through ModifyListener,
 *   an SNI certificate through AddListenerCertificates (new) then RemoveListenerCertificates (old).
 */
import {
  type CloudFrontClient,
  GetDistributionConfigCommand,
  UpdateDistributionCommand,
} from '@aws-sdk/client-cloudfront';
import {
  AddListenerCertificatesCommand,
  type Certificate,
  DescribeListenerCertificatesCommand,
  DescribeListenersCommand,
  type ElasticLoadBalancingV2Client,
  type Listener,
  ModifyListenerCommand,
  RemoveListenerCertificatesCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { CertkeeperError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { retry } from '../../platform/retry.js';
import { awsErrorName, awsErrorText } from './client.js';

export type ResourceKind = 'cloudfront' | 'elbv2' | 'other';

/** What kind of thing an InUseBy ARN is. Only CloudFront distributions and ELBv2 load balancers are swapped. */
export function resourceKind(arn: string): ResourceKind {
  if (/^arn:aws[a-z-]*:cloudfront::\d{12}:distribution\/[A-Z0-9]+$/.test(arn)) return 'cloudfront';
  if (
    /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer\/(app|net)\/[^/]+\/[0-9a-f]+$/.test(
      arn,
    )
  )
    return 'elbv2';
  return 'other';
}

export interface SwapOutcome {
  resource: string;
  kind: 'cloudfront' | 'elbv2';
  /** What changes (plan) or changed (apply), in words. Empty when nothing points at the old certificate any more. */
  changes: string[];
  /** Already on the new certificate (a resumed run). */
  alreadyNew: boolean;
  /** It uses neither certificate (ACM's InUseBy lags behind changes): why nothing changes. */
  notUsing?: string;
}

export interface SwapContext {
  oldArn: string;
  /** Undefined while planning (the replacement is not requested yet). */
  newArn?: string;
  apply: boolean;
  logger: Logger;
  /** UpdateDistribution attempts when the ETag keeps going stale (default 4). */
  etagAttempts?: number;
}

/** An AWS failure during a swap, naming the IAM action and the resource. */
export function swapError(err: unknown, action: string, resource: string): CertkeeperError {
  if (err instanceof CertkeeperError) return err;
  const name = awsErrorName(err);
  const msg = awsErrorText(err);
  const denied = /AccessDenied|UnauthorizedOperation|AuthFailure/.test(name);
  const creds =
    /CredentialsProviderError|InvalidClientTokenId|UnrecognizedClient|SignatureDoesNotMatch|ExpiredToken/.test(
      name,
    );
  return new CertkeeperError('aws', `${action} on ${resource} failed: ${msg.slice(0, 500)}`, {
    code: 'CK_ERR_ACM_REPLACE_SWAP',
    permanent: denied || creds,
    cause: err,
    hint: denied
      ? `allow ${action} in the IAM policy of the credentials certkeeper uses (README: minimal IAM policy for acm replace)`
      : creds
        ? 'certkeeper found no valid AWS credentials: set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or give the host an IAM role'
        : 'run the same command again: it continues where it stopped and swaps nothing twice',
  });
}

async function send<T>(fn: () => Promise<T>, action: string, resource: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw swapError(err, action, resource);
  }
}

export async function swapCloudFront(
  cf: CloudFrontClient,
  distributionArn: string,
  ctx: SwapContext,
): Promise<SwapOutcome> {
  const id = distributionArn.split('/').pop()!;
  const attempts = Math.max(1, ctx.etagAttempts ?? 4);
  const stale = (err: unknown) => {
    const name = awsErrorName(err);
    return name === 'PreconditionFailed' || name === 'InvalidIfMatchVersion';
  };
  try {
    // A stale ETag is re-read at once (no wait): someone else's change is already done.
    return await retry(
      async () => {
        const got = await send(
          () => cf.send(new GetDistributionConfigCommand({ Id: id })),
          'cloudfront:GetDistributionConfig',
          distributionArn,
        );
        const cfg = got.DistributionConfig;
        const vc = cfg?.ViewerCertificate;
        const current = vc?.ACMCertificateArn;
        const out: SwapOutcome = {
          resource: distributionArn,
          kind: 'cloudfront',
          changes: [],
          alreadyNew: false,
        };
        if (ctx.newArn && current === ctx.newArn) return { ...out, alreadyNew: true };
        if (!cfg || !vc || current !== ctx.oldArn) {
          // ACM still lists it (InUseBy lags a few minutes), but it no longer uses the old one: nothing to change.
          return { ...out, notUsing: `uses ${current ?? 'no ACM certificate'}: left unchanged` };
        }
        out.changes.push(
          'ViewerCertificate.ACMCertificateArn → new certificate (UpdateDistribution with IfMatch)',
        );
        if (!ctx.apply || !ctx.newArn) return out;
        const next = {
          ...cfg,
          ViewerCertificate: {
            ...vc,
            ACMCertificateArn: ctx.newArn,
            ...(vc.Certificate === ctx.oldArn && { Certificate: ctx.newArn }),
          },
        };
        await cf.send(new UpdateDistributionCommand({ Id: id, IfMatch: got.ETag, DistributionConfig: next }));
        ctx.logger.info(
          { event: 'acm_replace.swapped', resource: distributionArn, newArn: ctx.newArn },
          `CloudFront distribution ${id} now uses the new certificate`,
        );
        return out;
      },
      {
        delaysMs: Array.from({ length: attempts - 1 }, () => 0),
        retryable: stale,
        onRetry: (_err, attempt) =>
          ctx.logger.warn(
            { event: 'acm_replace.stale_etag', resource: distributionArn, attempt },
            `CloudFront distribution ${id} changed since it was read (stale ETag): reading it again`,
          ),
      },
    );
  } catch (err) {
    // Read errors are CertkeeperErrors already (send()); swapError passes them through.
    throw swapError(err, 'cloudfront:UpdateDistribution', distributionArn);
  }
}

async function listAll<T>(page: (marker?: string) => Promise<{ items: T[]; next?: string }>): Promise<T[]> {
  const out: T[] = [];
  let marker: string | undefined;
  for (let i = 0; i < 50; i++) {
    const r = await page(marker);
    out.push(...r.items);
    if (!r.next) return out;
    marker = r.next;
  }
  return out;
}

export async function swapLoadBalancer(
  elb: ElasticLoadBalancingV2Client,
  loadBalancerArn: string,
  ctx: SwapContext,
): Promise<SwapOutcome> {
  const out: SwapOutcome = { resource: loadBalancerArn, kind: 'elbv2', changes: [], alreadyNew: false };
  const listeners = await send(
    () =>
      listAll<Listener>(async (Marker) => {
        const r = await elb.send(new DescribeListenersCommand({ LoadBalancerArn: loadBalancerArn, Marker }));
        return { items: r.Listeners ?? [], next: r.NextMarker };
      }),
    'elasticloadbalancing:DescribeListeners',
    loadBalancerArn,
  );
  let sawNew = false;
  for (const l of listeners) {
    if (l.Protocol !== 'HTTPS' && l.Protocol !== 'TLS') continue;
    const listenerArn = l.ListenerArn!;
    const certs = await send(
      () =>
        listAll<Certificate>(async (Marker) => {
          const r = await elb.send(
            new DescribeListenerCertificatesCommand({ ListenerArn: listenerArn, Marker }),
          );
          return { items: r.Certificates ?? [], next: r.NextMarker };
        }),
      'elasticloadbalancing:DescribeListenerCertificates',
      listenerArn,
    );
    const def = certs.find((c) => c.IsDefault)?.CertificateArn ?? l.Certificates?.[0]?.CertificateArn;
    const sni = certs.filter((c) => !c.IsDefault).map((c) => c.CertificateArn);
    const where = `listener ${l.Protocol} :${l.Port}`;
    if (ctx.newArn && (def === ctx.newArn || sni.includes(ctx.newArn))) sawNew = true;
    if (def === ctx.oldArn) {
      out.changes.push(`${where} default certificate → new certificate (ModifyListener)`);
      if (ctx.apply && ctx.newArn) {
        await send(
          () =>
            elb.send(
              new ModifyListenerCommand({
                ListenerArn: listenerArn,
                Certificates: [{ CertificateArn: ctx.newArn }],
              }),
            ),
          'elasticloadbalancing:ModifyListener',
          listenerArn,
        );
      }
    }
    if (sni.includes(ctx.oldArn)) {
      const hasNew = ctx.newArn !== undefined && (sni.includes(ctx.newArn) || def === ctx.newArn);
      out.changes.push(
        `${where} SNI certificate → ${hasNew ? '' : 'add the new one (AddListenerCertificates), then '}remove the old one (RemoveListenerCertificates)`,
      );
      if (ctx.apply && ctx.newArn) {
        if (!hasNew) {
          await send(
            () =>
              elb.send(
                new AddListenerCertificatesCommand({
                  ListenerArn: listenerArn,
                  Certificates: [{ CertificateArn: ctx.newArn }],
                }),
              ),
            'elasticloadbalancing:AddListenerCertificates',
            listenerArn,
          );
        }
        await send(
          () =>
            elb.send(
              new RemoveListenerCertificatesCommand({
                ListenerArn: listenerArn,
                Certificates: [{ CertificateArn: ctx.oldArn }],
              }),
            ),
          'elasticloadbalancing:RemoveListenerCertificates',
          listenerArn,
        );
      }
    }
  }
  if (out.changes.length === 0) {
    if (sawNew) return { ...out, alreadyNew: true };
    return { ...out, notUsing: 'no HTTPS/TLS listener uses the old certificate: left unchanged' };
  }
  if (ctx.apply && ctx.newArn) {
    ctx.logger.info(
      { event: 'acm_replace.swapped', resource: loadBalancerArn, newArn: ctx.newArn, changes: out.changes },
      `load balancer ${loadBalancerArn.split('/').slice(-2, -1)[0]} now uses the new certificate`,
    );
  }
  return out;
}
