import * as z from 'zod';
import { execChallengeSchema } from '../challenges/exec/schema.js';
import { route53ChallengeSchema } from '../challenges/route53/schema.js';
import { webrootChallengeSchema } from '../challenges/webroot/schema.js';
import { clusterSchema } from '../cluster/schema.js';
import { KEY_TYPES } from '../core/keys.js';
import { acmAuditSchema, acmDeploySchema, cloudfrontKeyTypeIssue } from '../deploy/acm/schema.js';
import { nginxDeploySchema } from '../deploy/nginx/schema.js';
import { notifySchema } from '../notify/schema.js';
import { watchListSchema } from '../watch/schema.js';
import { isSafeFileName, isValidDnsName } from './dns-name.js';
import { canonicalIp, isIpAddress } from './ip.js';
import { PROFILE_NAME } from './profiles.js';

export { KEY_TYPES, type KeyType } from '../core/keys.js';

export const DIRECTORY_ALIASES: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
};

/** Plain http:// only reaches a CA on this machine (a local test CA): anyone on the path could rewrite its answers. */
export function isAllowedDirectoryUrl(url: string): boolean {
  if (!URL.canParse(url)) return true; // the URL check itself reports it
  const u = new URL(url);
  if (u.protocol === 'https:') return true;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

const PLAIN_HTTP =
  'plain http:// lets anyone on the network path change what the CA says (tokens, identifiers, certificates); use the CA’s https:// directory URL (http:// is accepted only for 127.0.0.1, ::1 and localhost)';

const directoryUrlSchema = (error: string) =>
  z
    .string()
    .transform((s) => DIRECTORY_ALIASES[s] ?? s)
    .pipe(z.url({ protocol: /^https?$/, error }).refine(isAllowedDirectoryUrl, { error: PLAIN_HTTP }));

/** A DNS name (optionally "*.") or an IPv4/IPv6 address (kept in its one canonical spelling). */
const domainSchema = z
  .string()
  .transform((s) => {
    const t = s.trim().toLowerCase();
    return isIpAddress(t) ? canonicalIp(t) : t;
  })
  .refine((s) => isIpAddress(s) || isValidDnsName(s), {
    error: (iss) => `"${String(iss.input)}" is not a valid DNS name or IP address`,
  });

/** An ACME profile name (the directory's meta.profiles keys), e.g. "tlsserver". */
const profileSchema = z
  .string()
  .regex(PROFILE_NAME, 'expected a profile name such as "tlsserver", "shortlived" or "classic"');

export const challengeSchema = z.discriminatedUnion('type', [
  webrootChallengeSchema,
  z.discriminatedUnion('provider', [route53ChallengeSchema, execChallengeSchema]),
]);
export type ChallengeConfig = z.infer<typeof challengeSchema>;

export const deploySchema = z.discriminatedUnion('type', [nginxDeploySchema, acmDeploySchema]);
export type DeployConfig = z.infer<typeof deploySchema>;

export const certificateSchema = z
  .strictObject({
    name: z.string().refine(isSafeFileName, {
      error: (iss) =>
        `"${String(iss.input)}" is not a safe file name: use letters, digits, ".", "_" and "-", starting with a letter or digit (no "/" or "..")`,
    }),
    domains: z.array(domainSchema).min(1, 'list at least one domain'),
    keyType: z.enum(KEY_TYPES).default('ecdsa-p256'),
    challenge: challengeSchema,
    deploy: z.array(deploySchema).default([]),
    /** Renew when less than this fraction of the lifetime is left (default 1/3, like certbot's 30 of 90 days). */
    renewBeforeFraction: z.number().gt(0).lt(1).optional(),
    /**
     * Write a self-signed placeholder before the first order when nothing is live, so a server naming the files can
     * start while the CA is unreachable (default true).
     */
    bootstrap: z.boolean().optional(),
    /** Preferred chain (issuer CN) — an optional CA feature. */
    preferredChain: z.string().optional(),
    /** ACME profile for this certificate; default acme.profile (filled in when the config is loaded). */
    profile: profileSchema.optional(),
  })
  .superRefine((c, ctx) => {
    // Checked here, before anything is ordered: a CloudFront deployer with a key CloudFront refuses.
    const i = cloudfrontKeyTypeIssue(c.keyType, c.deploy);
    if (i) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
  });
export type CertificateConfig = z.infer<typeof certificateSchema>;

export const configSchema = z.strictObject({
  acme: z.strictObject({
    directoryUrl: directoryUrlSchema(
      'expected "letsencrypt", "letsencrypt-staging" or an https:// ACME directory URL',
    ).default(DIRECTORY_ALIASES.letsencrypt!),
    /** Used by `renew --dry-run`; default: letsencrypt-staging when directoryUrl is Let's Encrypt, else directoryUrl. */
    stagingDirectoryUrl: directoryUrlSchema(
      'expected "letsencrypt-staging" or an https:// ACME directory URL',
    ).optional(),
    email: z.email('expected an e-mail address such as ops@example.com').optional(),
    caBundle: z.string().min(1).optional(),
    eab: z.strictObject({ kid: z.string().min(1), hmacKey: z.string().min(1) }).optional(),
    /** Seconds; upper bound for one certificate's whole order. */
    orderTimeoutSeconds: z.number().positive().default(300),
    /** ACME profile for every certificate that names none (checked against the directory's meta.profiles). */
    profile: profileSchema.optional(),
  }),
  storage: z
    .strictObject({ path: z.string().min(1).default('/etc/letsencrypt') })
    .default({ path: '/etc/letsencrypt' }),
  selfCheck: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Port the HTTP-01 self-check connects to. The CA always uses 80; change it only behind port mapping or in tests. */
      httpPort: z.number().int().min(1).max(65535).default(80),
      /** DNS servers ("host:port") used to resolve domains for the self-check; default: the system resolver. */
      resolvers: z.array(z.string().min(1)).optional(),
      timeoutSeconds: z.number().positive().default(5),
    })
    .default({ enabled: true, httpPort: 80, timeoutSeconds: 5 }),
  renewal: z
    .strictObject({
      /** Fraction of the lifetime left at which to renew; default 1/3 (1/2 for lifetimes under 10 days). */
      renewBeforeFraction: z.number().gt(0).lt(1).optional(),
      concurrency: z.number().int().min(1).max(64).default(4),
      /**
       * Upper bound of the danger window (days): /readyz fails and "expiring" alerts fire inside the last half of the
       * renewal margin (1/6 of a 90-day lifetime, 1/4 of a 6-day one), never earlier than this many days before expiry.
       */
      dangerDays: z.number().min(0).default(14),
    })
    .default({ concurrency: 4, dangerDays: 14 }),
  schedule: z
    .strictObject({
      cron: z.string().optional(),
      timezone: z.string().default('UTC'),
      jitterSeconds: z.number().min(0).default(300),
    })
    .default({ timezone: 'UTC', jitterSeconds: 300 }),
  server: z
    .strictObject({
      listen: z.string().default('127.0.0.1:8080'),
      token: z
        .string()
        .min(16, 'use a token of at least 16 characters')
        .regex(/^[\x21-\x7e]+$/, {
          error:
            'the token has spaces or characters a bearer header cannot carry, so no request could ever match it: use e.g. the output of `openssl rand -hex 32`',
        })
        .optional(),
      tokenFile: z.string().min(1).optional(),
      bodyLimitBytes: z
        .number()
        .int()
        .positive()
        .default(16 * 1024),
      /** Per-certificate pause between forced renewals through the API (0 = none). */
      forceCooldownSeconds: z.number().min(0).default(300),
      /**
       * A second, read-only listener (GET /metrics, /healthz, /readyz and the status page; nothing that changes
       * anything) that may bind any address without a token, e.g. 0.0.0.0:9108 for Prometheus in another container.
       */
      metricsListen: z
        .string()
        .regex(/^(\[[^\]]+\]|[^:\s]*):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:9108 or 127.0.0.1:9108')
        .optional(),
      /** Serve the status page (GET /) without a token to clients that are not on loopback. */
      publicStatus: z.boolean().optional(),
    })
    .default({ listen: '127.0.0.1:8080', bodyLimitBytes: 16 * 1024, forceCooldownSeconds: 300 }),
  notify: z.array(notifySchema).default([]),
  acmAudit: acmAuditSchema.optional(),
  /** Served certificates to check on a schedule (any server, whoever issued the certificate). */
  watch: watchListSchema,
  /** Several hosts on one PostgreSQL; absent = single host, local files only. */
  cluster: clusterSchema.optional(),
  certificates: z.array(certificateSchema).default([]),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
