import { z } from 'zod';

/** `deploy: [{ type: acm, region: us-east-1, arn?, tags?, cloudfront? }]` */
export const acmDeploySchema = z.strictObject({
  type: z.literal('acm'),
  region: z.string().min(1).default('us-east-1'),
  arn: z.string().min(1).optional(),
  tags: z.record(z.string(), z.string()).optional(),
  cloudfront: z.boolean().default(false),
});
export type AcmDeployConfig = z.infer<typeof acmDeploySchema>;
