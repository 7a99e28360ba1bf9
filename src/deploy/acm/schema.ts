import * as z from 'zod';
import { CLOUDFRONT_KEY_TYPES, CLOUDFRONT_KEYS_TEXT } from './keys.js';

/** Tag every certificate certkeeper creates in ACM with this key (value: the certificate's name). */
export const CERTKEEPER_TAG = 'certkeeper:name';

const ACM_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;

const tagsSchema = z
  .record(
    z
      .string()
      .min(1, 'a tag key cannot be empty')
      .max(128, 'ACM tag keys are at most 128 characters')
      .refine((k) => !k.toLowerCase().startsWith('aws:'), {
        error: 'tag keys starting with "aws:" are reserved by AWS',
      })
      .refine((k) => k !== CERTKEEPER_TAG, { error: `"${CERTKEEPER_TAG}" is set by certkeeper itself` }),
    z.string().max(256, 'ACM tag values are at most 256 characters'),
  )
  .refine((t) => Object.keys(t).length <= 49, {
    error: 'ACM allows 50 tags per certificate and certkeeper uses one',
  });

/**
 * `deploy: [{ type: acm, region: us-east-1, arn?, tags?, cloudfront? }]`
 * - region: where to import; CloudFront only reads ACM in us-east-1 (the default).
 * - arn: re-import into this existing imported certificate instead of creating one on the first run.
 * - tags: applied when certkeeper creates the certificate (ACM refuses tags on a re-import).
 * - cloudfront: the certificate is (or will be) attached to CloudFront: only RSA 2048/3072/4096 and ECDSA P-256
 *   keys (the certificate's keyType is checked when the configuration is loaded).
 */
export const acmDeploySchema = z
  .strictObject({
    type: z.literal('acm'),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as us-east-1')
      .default('us-east-1'),
    arn: z
      .string()
      .regex(ACM_ARN, 'expected an ACM certificate ARN: arn:aws:acm:<region>:<account>:certificate/<id>')
      .optional(),
    tags: tagsSchema.optional(),
    cloudfront: z.boolean().default(false),
  })
  .superRefine((v, ctx) => {
    if (v.arn && v.arn.split(':')[3] !== v.region) {
      ctx.addIssue({
        code: 'custom',
        path: ['arn'],
        message: `the ARN is in ${v.arn.split(':')[3]} but region is ${v.region}: set region to the ARN's region`,
      });
    }
    if (v.cloudfront && v.region !== 'us-east-1') {
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        message:
          'CloudFront only uses ACM certificates in us-east-1: set region: us-east-1 (or cloudfront: false)',
      });
    }
  });
export type AcmDeployConfig = z.infer<typeof acmDeploySchema>;

/** `acmAudit: { regions: [us-east-1], expiringDays: 30, replace: false }` — also run daily by the daemon when present. */
export const acmAuditSchema = z.strictObject({
  regions: z
    .array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as us-east-1'))
    .min(1, 'list at least one region')
    .default(['us-east-1']),
  expiringDays: z.number().int().positive().default(30),
  /**
   * The daemon replaces email-validation and pending-validation findings by itself (certkeeper acm replace, one at a
   * time, an alert at each step). Off by default: the audit alert then carries the command to run.
   */
  replace: z.boolean().default(false),
});
export type AcmAuditConfig = z.infer<typeof acmAuditSchema>;

/**
 * A certificate whose key CloudFront refuses (keyType ecdsa-p384) deployed with `cloudfront: true`: reported when the
 * configuration is loaded, so no certificate is ordered only to be refused at import.
 */
export function cloudfrontKeyTypeIssue(
  keyType: string,
  deploy: readonly { type: string; cloudfront?: boolean }[],
): { path: (string | number)[]; message: string } | undefined {
  if (CLOUDFRONT_KEY_TYPES.includes(keyType)) return undefined;
  const i = deploy.findIndex((d) => d.type === 'acm' && d.cloudfront === true);
  if (i < 0) return undefined;
  return {
    path: ['keyType'],
    message: `keyType ${keyType} cannot be used with CloudFront (deploy[${i}] has cloudfront: true): CloudFront takes ${CLOUDFRONT_KEYS_TEXT} keys; set keyType: ecdsa-p256 (or rsa-2048)`,
  };
}
