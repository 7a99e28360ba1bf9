import * as z from 'zod';

/** `challenge: { type: http-01, webroot: /var/www/certbot }` */
export const webrootChallengeSchema = z.strictObject({
  type: z.literal('http-01'),
  webroot: z.string().min(1),
  /** Per-certificate override of the global `selfCheck.enabled`. */
  selfCheck: z.boolean().optional(),
});
export type WebrootChallengeConfig = z.infer<typeof webrootChallengeSchema>;
