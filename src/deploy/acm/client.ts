import { ACMClient } from '@aws-sdk/client-acm';
import { awsErrorName } from '../../platform/aws/errors.js';

/**
 * An ACM client for one region. Everything else comes from the SDK's own settings, so they keep working:
 * the default credential chain (env, profile, SSO, web identity, container/instance roles), AWS_PROFILE,
 * AWS_ENDPOINT_URL_ACM / AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS and AWS_RETRY_MODE. certkeeper reads none of them.
 */
export function buildAcmClient(region: string): ACMClient {
  return new ACMClient({ region });
}

/** Lazily built clients, one per region (the audit walks several). */
export function clientCache(
  make: (region: string) => ACMClient = buildAcmClient,
): (region: string) => ACMClient {
  const clients = new Map<string, ACMClient>();
  return (region) => {
    let c = clients.get(region);
    if (!c) {
      c = make(region);
      clients.set(region, c);
    }
    return c;
  };
}

// The one AWS error vocabulary, shared with Route53.
export { awsErrorName, awsErrorText, isPermanentAwsError } from '../../platform/aws/errors.js';

/** A sentence on what to do about an AWS error, by its name. */
export function hintForAwsError(err: unknown, action: string, region: string): string {
  const name = awsErrorName(err);
  switch (name) {
    case 'AccessDeniedException':
    case 'AccessDeniedFault':
      return `grant the identity certkeeper runs as ${action} on ACM in ${region} (see the README's minimal IAM policy)`;
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'CredentialsProviderError':
      return 'certkeeper found no valid AWS credentials: set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or give the host an IAM role';
    case 'ThrottlingException':
    case 'TooManyRequestsException':
      return 'ACM is throttling this account; certkeeper retries on its next run, or run certkeeper renew again later';
    case 'LimitExceededException':
      return 'the account reached an ACM quota (imported certificates per year or in total): delete unused certificates or ask AWS for a higher quota';
    default:
      return `check the AWS error above; certkeeper retries ${action} on its next run`;
  }
}

/**
 * The other clients `acm replace` uses, built the same way (SDK settings: AWS_ENDPOINT_URL_CLOUDFRONT,
 * AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2, AWS_PROFILE, the default credential chain). CloudFront is global and
 * signs in us-east-1; ELBv2 is regional (the load balancer's region, from its ARN).
 */
export async function buildReplaceClients(): Promise<{
  acm: (region: string) => ACMClient;
  cloudfront: () => import('@aws-sdk/client-cloudfront').CloudFrontClient;
  elbv2: (region: string) => import('@aws-sdk/client-elastic-load-balancing-v2').ElasticLoadBalancingV2Client;
  route53: () => import('@aws-sdk/client-route-53').Route53Client;
  destroy: () => void;
}> {
  const [{ CloudFrontClient }, { ElasticLoadBalancingV2Client }, { buildRoute53Client }] = await Promise.all([
    import('@aws-sdk/client-cloudfront'),
    import('@aws-sdk/client-elastic-load-balancing-v2'),
    import('../../challenges/route53/client.js'),
  ]);
  const all: { destroy(): void }[] = [];
  const keep = <T extends { destroy(): void }>(c: T): T => {
    all.push(c);
    return c;
  };
  const acm = clientCache((r) => keep(buildAcmClient(r)));
  const elbs = new Map<string, InstanceType<typeof ElasticLoadBalancingV2Client>>();
  let cf: InstanceType<typeof CloudFrontClient> | undefined;
  let r53: ReturnType<typeof buildRoute53Client> | undefined;
  return {
    acm,
    cloudfront: () => {
      cf ??= keep(new CloudFrontClient({ region: 'us-east-1' }));
      return cf;
    },
    elbv2: (region) => {
      let c = elbs.get(region);
      if (!c) {
        c = keep(new ElasticLoadBalancingV2Client({ region }));
        elbs.set(region, c);
      }
      return c;
    },
    route53: () => {
      r53 ??= keep(buildRoute53Client());
      return r53;
    },
    destroy: () => {
      for (const c of all.splice(0)) c.destroy();
    },
  };
}
