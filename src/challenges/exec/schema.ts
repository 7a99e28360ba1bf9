import * as z from 'zod';
import { nameserverSchema } from '../route53/schema.js';

/** `challenge: { type: dns-01, provider: exec, command: [...] }` — runs the user's program, no shell. */
export const execChallengeSchema = z.strictObject({
  type: z.literal('dns-01'),
  provider: z.literal('exec'),
  /** argv; certkeeper appends: <present|cleanup> <domain> <record name> <value>. */
  command: z
    .array(z.string().min(1))
    .min(1, 'give the program and its fixed arguments, e.g. ["/usr/local/bin/dns-hook"]'),
  /** Per call; the program (and its process group) is killed when it runs longer. */
  timeoutSeconds: z.number().int().positive().max(3600).default(120),
  /** Wait until the TXT values are visible on the zone's authoritative nameservers (found via NS lookups, or `nameservers`). */
  checkAuthoritative: z.boolean().default(false),
  nameservers: z.array(nameserverSchema).min(1).optional(),
  propagationTimeoutSeconds: z.number().int().positive().max(3600).default(300),
});
export type ExecChallengeConfig = z.infer<typeof execChallengeSchema>;
