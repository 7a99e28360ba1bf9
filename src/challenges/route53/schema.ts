import { z } from 'zod';

/** `challenge: { type: dns-01, provider: route53, ... }` — see README "DNS-01 with Route53". */
export const route53ChallengeSchema = z.strictObject({
  type: z.literal('dns-01'),
  provider: z.literal('route53'),
  hostedZoneId: z.string().min(1).optional(),
  roleArn: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  privateZone: z.boolean().default(false),
  /** Confirm the TXT values on the zone's authoritative nameservers before answering the challenge. */
  checkAuthoritative: z.boolean().default(true),
  /** Override the nameservers used for that check ("host:port"); default: the zone's own NS records. */
  nameservers: z.array(z.string().min(1)).optional(),
  propagationTimeoutSeconds: z.number().int().positive().default(300),
});
export type Route53ChallengeConfig = z.infer<typeof route53ChallengeSchema>;
