import { Route53Client } from '@aws-sdk/client-route-53';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';

export interface Route53ClientSettings {
  /** Route53 is global; the region only picks the partition and signing region. Default us-east-1. */
  region?: string;
  /** Assume this role (credentials of the default chain call sts:AssumeRole). */
  roleArn?: string;
  /** Shown in CloudTrail as the role session name. */
  sessionName?: string;
}

/**
 * Builds the real SDK client so the SDK's own settings keep working: the default credential chain
 * (env, shared profile, SSO, container or instance role), AWS_ENDPOINT_URL_ROUTE_53 / endpoint_url in
 * the profile, and proxy settings. certkeeper sets only the region default and the retry strategy:
 * "adaptive" adds client-side rate limiting, which matters for Route53's account-wide 5 requests/s;
 * throttling and PriorRequestNotComplete are retried by it with backoff and jitter.
 */
export function buildRoute53Client(settings: Route53ClientSettings = {}): Route53Client {
  const region = settings.region ?? 'us-east-1';
  return new Route53Client({
    region,
    maxAttempts: 6,
    retryMode: 'adaptive',
    ...(settings.roleArn && {
      credentials: fromTemporaryCredentials({
        params: {
          RoleArn: settings.roleArn,
          RoleSessionName: (settings.sessionName ?? 'certkeeper').replace(/[^\w+=,.@-]/g, '-').slice(0, 64),
          DurationSeconds: 3600,
        },
        clientConfig: { region },
      }),
    }),
  });
}

const shared = new Map<string, Route53Client>();

/**
 * One client per (region, role) for the whole process: the adaptive rate limiter and the credential
 * cache only help when certificates share them.
 */
export function sharedRoute53Client(settings: Route53ClientSettings = {}): Route53Client {
  const key = `${settings.region ?? 'us-east-1'}|${settings.roleArn ?? ''}`;
  let client = shared.get(key);
  if (!client) {
    client = buildRoute53Client({ ...settings, sessionName: 'certkeeper' });
    shared.set(key, client);
  }
  return client;
}

/** For shutdown and tests: closes the shared clients' sockets. */
export function destroySharedRoute53Clients(): void {
  for (const c of shared.values()) c.destroy();
  shared.clear();
}
