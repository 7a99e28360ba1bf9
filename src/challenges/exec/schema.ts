import { z } from 'zod';

/** `challenge: { type: dns-01, provider: exec, command: [...] }` — runs the user's program, no shell. */
export const execChallengeSchema = z.strictObject({
  type: z.literal('dns-01'),
  provider: z.literal('exec'),
  /** argv; certkeeper appends: <present|cleanup> <domain> <record name> <value>. */
  command: z.array(z.string().min(1)).min(1),
  timeoutSeconds: z.number().int().positive().default(120),
  checkAuthoritative: z.boolean().default(false),
  nameservers: z.array(z.string().min(1)).optional(),
  propagationTimeoutSeconds: z.number().int().positive().default(300),
});
export type ExecChallengeConfig = z.infer<typeof execChallengeSchema>;
