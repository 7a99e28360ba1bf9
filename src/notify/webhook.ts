import { postJson } from './post.js';
import type { NotifyConfig } from './schema.js';
import type { Alert, Notifier } from './types.js';

type WebhookConfig = Extract<NotifyConfig, { type: 'webhook' }>;

/** The generic webhook's JSON body: the alert itself plus a version and the sender, stable field names. */
export function webhookPayload(alert: Alert): Record<string, unknown> {
  return { version: 1, source: 'certkeeper', ...alert };
}

export function create(config: WebhookConfig, timeoutMs = 10_000): Notifier {
  return {
    name: `webhook ${new URL(config.url).host}`,
    events: config.events,
    send: async (alert, signal) => {
      await postJson(config.url, webhookPayload(alert), { headers: config.headers, signal, timeoutMs });
    },
  };
}
