import { postJson } from './post.js';
import type { NotifyConfig } from './schema.js';
import type { Alert, Notifier } from './types.js';

type SlackConfig = Extract<NotifyConfig, { type: 'slack' }>;

const ICON: Record<Alert['event'], string> = {
  failure: ':x:',
  expiring: ':warning:',
  success: ':white_check_mark:',
  audit: ':rotating_light:',
  endpoint: ':warning:',
};

/** Slack (and Mattermost/Rocket.Chat) incoming-webhook body: `text` for notifications, `blocks` for the view. */
export function slackPayload(alert: Alert): { text: string; blocks: unknown[] } {
  const head = `${ICON[alert.event]} certkeeper: ${alert.certificate} — ${alert.message}`;
  const facts = [
    `*Domains:* ${alert.domains.join(', ') || '-'}`,
    alert.notAfter &&
      `*Expires:* ${alert.notAfter}${alert.daysLeft !== undefined ? ` (${alert.daysLeft} days)` : ''}`,
    alert.code && `*Code:* \`${alert.code}\``,
    alert.jobId && `*Job:* \`${alert.jobId}\``,
    alert.audit && `*ACM:* \`${alert.audit.arn}\` (${alert.audit.region}), rule \`${alert.audit.rule}\``,
    alert.audit?.inUseBy.length && `*Used by:* ${alert.audit.inUseBy.join(', ')}`,
    alert.endpoint &&
      `*Endpoint:* \`${alert.endpoint.address}\`${alert.endpoint.sni ? ` (SNI ${alert.endpoint.sni})` : ''}, ${alert.endpoint.problem}`,
  ].filter(Boolean) as string[];
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: head } },
    { type: 'section', text: { type: 'mrkdwn', text: facts.join('\n') } },
  ];
  if (alert.hint)
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `Fix: ${alert.hint}` }] });
  return { text: alert.hint ? `${head}\nFix: ${alert.hint}` : head, blocks };
}

export function create(config: SlackConfig, timeoutMs = 10_000): Notifier {
  return {
    // The incoming-webhook URL is the secret: name the target by host only.
    name: `slack ${new URL(config.url).host}`,
    events: config.events,
    send: async (alert, signal) => {
      await postJson(config.url, slackPayload(alert), { signal, timeoutMs });
    },
  };
}
