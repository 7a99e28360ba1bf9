import { z } from 'zod';

const events = z
  .array(z.enum(['failure', 'expiring', 'success', 'audit', 'endpoint']))
  .default(['failure', 'expiring', 'audit', 'endpoint']);

export const notifySchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('webhook'),
    url: z.url(),
    headers: z.record(z.string(), z.string()).optional(),
    events,
  }),
  z.strictObject({ type: z.literal('slack'), url: z.url(), events }),
]);
export type NotifyConfig = z.infer<typeof notifySchema>;
