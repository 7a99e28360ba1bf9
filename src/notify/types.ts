export type AlertEvent = 'failure' | 'expiring' | 'success';

/** What every notify target receives; the webhook sends it as JSON, Slack as text. Never carries secrets. */
export interface Alert {
  event: AlertEvent;
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
}

/** One target: sends one alert or throws. Retries are the dispatcher's job. */
export interface Notifier {
  name: string;
  events: readonly string[];
  send(alert: Alert, signal: AbortSignal): Promise<void>;
}
