import { isIP } from 'node:net';
import * as z from 'zod';

/** True for "host", "host:port", "[v6]:port" or a bare IPv6 address. */
export function isNameserverSpec(spec: string): boolean {
  const port = (p: string | undefined) => p === undefined || (Number(p) >= 1 && Number(p) <= 65535);
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(spec);
  if (bracket) return isIP(bracket[1]!) === 6 && port(bracket[2]);
  if (spec.split(':').length > 2) return isIP(spec) === 6;
  const m = /^([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?)(?::(\d{1,5}))?$/.exec(spec);
  return !!m && port(m[2]);
}

/** A DNS server to ask for the authoritative check. */
export const nameserverSchema = z.string().trim().refine(isNameserverSpec, {
  error: 'expected "host", "host:port" or "[ipv6]:port", e.g. "ns-1.awsdns-01.org" or "127.0.0.1:8053"',
});

/** `challenge: { type: dns-01, provider: route53, ... }` — see README "DNS-01 with Route53". */
export const route53ChallengeSchema = z.strictObject({
  type: z.literal('dns-01'),
  provider: z.literal('route53'),
  /** Skip zone discovery: the zone that holds every domain of this certificate. */
  hostedZoneId: z
    .string()
    .trim()
    .regex(/^(\/hostedzone\/)?[A-Z0-9]{1,32}$/, {
      error:
        'expected a Route53 hosted zone ID such as Z0123456789ABCDEFGHIJ (Route53 console → Hosted zones)',
    })
    .optional(),
  /** Assume this role with the default-chain credentials (sts:AssumeRole). */
  roleArn: z
    .string()
    .trim()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, {
      error: 'expected a role ARN such as arn:aws:iam::123456789012:role/certkeeper-dns',
    })
    .optional(),
  /** Route53 is global; the region picks the partition (aws-cn, aws-us-gov). Default us-east-1. */
  region: z
    .string()
    .trim()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, { error: 'expected an AWS region such as us-east-1' })
    .optional(),
  /** Use a private hosted zone when one matches (public zones are preferred otherwise). */
  privateZone: z.boolean().default(false),
  /** Confirm the TXT values on the zone's authoritative nameservers before answering the challenge. */
  checkAuthoritative: z.boolean().default(true),
  /** Override the nameservers used for that check ("host:port"); default: the zone's delegation set. */
  nameservers: z.array(nameserverSchema).min(1).optional(),
  /** Bound for the INSYNC wait plus the authoritative check together. */
  propagationTimeoutSeconds: z.number().int().positive().max(3600).default(300),
});
export type Route53ChallengeConfig = z.infer<typeof route53ChallengeSchema>;
