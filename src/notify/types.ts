export type AlertEvent = 'failure' | 'expiring' | 'success' | 'audit' | 'endpoint';

/** What every notify target receives; the webhook sends it as JSON, Slack as text. Never carries secrets. */
export interface Alert {
  event: AlertEvent;
  /** The certificate's name in the configuration; for 'audit', the ACM certificate's domain name. */
  certificate: string;
  domains: string[];
  /** One line: what happened. */
  message: string;
  /** What to fix (failures). */
  hint?: string;
  code?: string;
  jobId?: string;
  serial?: string;
  notAfter?: string;
  daysLeft?: number;
  /** When it happened (ISO 8601). */
  at: string;
  /** 'audit' only: the ACM finding (see `certkeeper acm audit`). */
  audit?: AuditAlertFields;
  /** 'endpoint' only: the watched endpoint (watch: in the configuration) and what is wrong with it. */
  endpoint?: EndpointAlertFields;
}

export interface EndpointAlertFields {
  /** The watch entry's label. */
  name: string;
  address: string;
  sni?: string;
  /** unreachable, expiring, expired, untrusted, name-mismatch */
  problem: string;
  issuer?: string;
}

export interface AuditAlertFields {
  arn: string;
  region: string;
  /** email-validation, pending-validation, renewal-ineligible, expiring, unmanaged-import, cloudfront-key */
  rule: string;
  severity: 'critical' | 'warning';
  /** Resources using the certificate (CloudFront distributions, load balancers, ...). */
  inUseBy: string[];
}

/** One target: sends one alert or throws. Retries are the dispatcher's job. */
export interface Notifier {
  name: string;
  events: readonly string[];
  send(alert: Alert, signal: AbortSignal): Promise<void>;
}
