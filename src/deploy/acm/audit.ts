/**
 * `certkeeper acm audit`: lists every ACM certificate in the given regions and flags the ones that will not renew
 * by themselves, each with what to do about it. The CLI prints the findings; the daemon runs it daily and turns
 * them into metrics and alerts. Read-only: ListCertificates, DescribeCertificate, ListTagsForCertificate.
 */
import {
  type ACMClient,
  type CertificateDetail,
  type CertificateSummary,
  DescribeCertificateCommand,
  ListCertificatesCommand,
  ListTagsForCertificateCommand,
} from '@aws-sdk/client-acm';
import { CertkeeperError } from '../../errors.js';
import { type Logger, silentLogger } from '../../log.js';
import { awsErrorName, awsErrorText, buildAcmClient, clientCache, hintForAwsError } from './client.js';
import {
  ACM_KEY_ALGORITHMS,
  CLOUDFRONT_KEY_ALGORITHMS,
  CLOUDFRONT_KEYS_TEXT,
  describeAlgorithm,
  normalizeAlgorithm,
} from './keys.js';
import { CERTKEEPER_TAG } from './schema.js';

export const FINDING_RULES = [
  'email-validation',
  'pending-validation',
  'renewal-ineligible',
  'expiring',
  'unmanaged-import',
  'cloudfront-key',
] as const;
export type FindingRule = (typeof FINDING_RULES)[number];
export type Severity = 'critical' | 'warning';

export interface Finding {
  arn: string;
  region: string;
  domain: string;
  rule: FindingRule;
  severity: Severity;
  /** What is wrong, in one sentence. */
  message: string;
  /** What to do about it, in one sentence. */
  fix: string;
  /** ARNs of the resources using the certificate (CloudFront distributions, load balancers, ...). */
  inUseBy: string[];
}

export interface AcmAuditOptions {
  regions: string[];
  /** Flag certificates that expire within this many days (default 30). */
  expiringDays?: number;
  /** ARNs certkeeper renews (see managedArnsFromStore). */
  managedArns: Set<string>;
  now?: Date;
  clientFor?: (region: string) => ACMClient;
  logger?: Logger;
  /** DescribeCertificate calls in flight per region (default 4). */
  concurrency?: number;
  /** Upper bound on ListCertificates pages per region (default 100, i.e. up to 100 000 certificates). */
  maxPages?: number;
  /** MaxItems per ListCertificates page (default 1000, ACM's maximum). */
  pageSize?: number;
}

const DAY = 86_400_000;

export async function runAcmAudit(opts: AcmAuditOptions): Promise<Finding[]> {
  const now = opts.now ?? new Date();
  const clientFor = opts.clientFor ?? clientCache(buildAcmClient);
  const log = opts.logger ?? silentLogger;
  const findings: Finding[] = [];
  for (const region of [...new Set(opts.regions)]) {
    const client = clientFor(region);
    const summaries = await call(region, 'acm:ListCertificates', () =>
      listAll(client, opts.maxPages ?? 100, opts.pageSize ?? 1000),
    );
    log.debug({ region, certificates: summaries.length }, 'ACM certificates listed');
    const details = await mapLimit(summaries, opts.concurrency ?? 4, async (s) => {
      const arn = s.CertificateArn!;
      const out = await call(region, 'acm:DescribeCertificate', () =>
        client.send(new DescribeCertificateCommand({ CertificateArn: arn })),
      );
      return { ...summaryAsDetail(s), ...(out.Certificate ?? {}) } as CertificateDetail;
    });
    for (const d of details) {
      const tagOwner =
        d.Type === 'IMPORTED' && !opts.managedArns.has(d.CertificateArn!)
          ? await certkeeperTag(client, d.CertificateArn!, log)
          : undefined;
      findings.push(
        ...judge(d, region, {
          now,
          expiringDays: opts.expiringDays ?? 30,
          managed: opts.managedArns,
          tagOwner,
        }),
      );
    }
  }
  return findings.sort(
    (a, b) =>
      (a.severity === b.severity ? 0 : a.severity === 'critical' ? -1 : 1) ||
      a.region.localeCompare(b.region) ||
      a.domain.localeCompare(b.domain) ||
      FINDING_RULES.indexOf(a.rule) - FINDING_RULES.indexOf(b.rule),
  );
}

/** Counts per rule and severity, for metrics (every rule present, zero when clean). */
export function summarizeFindings(
  findings: Finding[],
): Record<FindingRule, { critical: number; warning: number }> {
  const out = Object.fromEntries(FINDING_RULES.map((r) => [r, { critical: 0, warning: 0 }])) as Record<
    FindingRule,
    { critical: number; warning: number }
  >;
  for (const f of findings) out[f.rule][f.severity]++;
  return out;
}

interface JudgeContext {
  now: Date;
  expiringDays: number;
  managed: Set<string>;
  /** Value of the certkeeper:name tag on an unmanaged imported certificate. */
  tagOwner?: string;
}

/** The rules, applied to one certificate. Exported for unit tests of single rules. */
export function judge(d: CertificateDetail, region: string, ctx: JudgeContext): Finding[] {
  const arn = d.CertificateArn ?? '(no arn)';
  const domain = d.DomainName ?? '(no domain)';
  const inUseBy = d.InUseBy ?? [];
  const inUse = inUseBy.length > 0;
  const usedBy = inUse ? inUseBy.join(', ') : 'nothing (not in use)';
  const managed = ctx.managed.has(arn);
  const out: Finding[] = [];
  const add = (rule: FindingRule, severity: Severity, message: string, fix: string) =>
    out.push({ arn, region, domain, rule, severity, message, fix, inUseBy });
  const sans = (d.SubjectAlternativeNames ?? [domain]).filter((s) => s !== domain);
  const requestCmd =
    `aws acm request-certificate --region ${region} --validation-method DNS --domain-name ${domain}` +
    (sans.length ? ` --subject-alternative-names ${sans.join(' ')}` : '');

  // 1. ACM-issued, validated by e-mail: renewal waits for a human to click.
  const validations = [
    ...(d.DomainValidationOptions ?? []),
    ...(d.RenewalSummary?.DomainValidationOptions ?? []),
  ];
  const emailDomains = [
    ...new Set(validations.filter((v) => v.ValidationMethod === 'EMAIL').map((v) => v.DomainName)),
  ];
  if (d.Type === 'AMAZON_ISSUED' && d.Status === 'ISSUED' && emailDomains.length > 0) {
    add(
      'email-validation',
      inUse ? 'critical' : 'warning',
      `ACM-issued certificate validated by e-mail (${emailDomains.join(', ')}): its renewal waits for someone to click the approval e-mail and silently expires otherwise; used by ${usedBy}`,
      `run certkeeper acm replace ${arn} (it requests a DNS-validated replacement, writes its CNAMEs in Route53, swaps it in on ${inUse ? inUseBy.join(', ') : 'nothing: not in use'} and, with --delete-old, deletes the old one); by hand: ${requestCmd}`,
    );
  }

  // 2. Requested more than a day ago and still not validated.
  if (d.Status === 'PENDING_VALIDATION' && d.CreatedAt && ctx.now.getTime() - d.CreatedAt.getTime() > DAY) {
    const hours = Math.floor((ctx.now.getTime() - d.CreatedAt.getTime()) / 3_600_000);
    add(
      'pending-validation',
      'warning',
      `requested ${hours} hours ago and still PENDING_VALIDATION (ACM gives up 72 hours after the request)`,
      `run certkeeper acm replace ${arn} --delete-old (a DNS-validated request whose CNAMEs certkeeper writes in Route53), or create the validation records shown by "aws acm describe-certificate --region ${region} --certificate-arn ${arn}", or delete the request if nobody needs it`,
    );
  }

  // 3. ACM will not renew it, and something uses it. (Imported ones are never eligible: rule 5 covers them.)
  if (d.Type !== 'IMPORTED' && d.RenewalEligibility === 'INELIGIBLE' && inUse) {
    const reason = d.RenewalSummary?.RenewalStatusReason;
    add(
      'renewal-ineligible',
      'critical',
      `ACM marks it INELIGIBLE for managed renewal while ${usedBy} use${inUseBy.length === 1 ? 's' : ''} it${reason ? ` (reason: ${reason})` : ''}`,
      `fix what keeps it from renewing (usually a validation CNAME that was removed, or a CAA record that excludes amazon.com), or request a replacement (${requestCmd}) and swap it in on ${inUseBy.join(', ')}`,
    );
  }

  // 4. Expiring (or expired) within N days.
  if (d.NotAfter && (d.Status === 'ISSUED' || d.Status === 'EXPIRED')) {
    const daysLeft = Math.floor((d.NotAfter.getTime() - ctx.now.getTime()) / DAY);
    if (daysLeft < ctx.expiringDays) {
      const when = daysLeft < 0 ? `expired ${-daysLeft} days ago` : `expires in ${daysLeft} days`;
      const fix = !inUse
        ? `nothing uses it: delete it (aws acm delete-certificate --region ${region} --certificate-arn ${arn})`
        : managed
          ? `certkeeper manages it: run "certkeeper status" to see why the last renewal or deploy failed, fix that, and run certkeeper renew`
          : d.Type === 'IMPORTED'
            ? `nobody renews imported certificates: let certkeeper manage it (deploy: [{ type: acm, region: ${region}, arn: ${arn} }]) or re-import a renewed certificate into this ARN`
            : `ACM renews 60 days before expiry only when validation still works: check RenewalSummary in "aws acm describe-certificate --region ${region} --certificate-arn ${arn}", or request a replacement and swap it in on ${inUseBy.join(', ')}`;
      // A managed certificate a little inside the window is usually just due for its next run.
      const severity: Severity = !inUse || (managed && daysLeft >= 14) ? 'warning' : 'critical';
      add('expiring', severity, `${when} (${d.NotAfter.toISOString()}); used by ${usedBy}`, fix);
    }
  }

  // 5. Imported, and certkeeper does not manage it: nobody renews it.
  if (d.Type === 'IMPORTED' && !managed) {
    const tagged = ctx.tagOwner
      ? `; it is tagged ${CERTKEEPER_TAG}=${ctx.tagOwner} but no state file of this configuration holds its ARN (another host's storage, or a lost state file)`
      : '';
    add(
      'unmanaged-import',
      inUse ? 'critical' : 'warning',
      `imported certificate that certkeeper does not manage: nobody renews it; used by ${usedBy}${tagged}`,
      inUse
        ? `let certkeeper renew it: add deploy: [{ type: acm, region: ${region}, arn: ${arn} }] to the certificate for ${domain} in certkeeper.yml`
        : `nothing uses it: delete it (aws acm delete-certificate --region ${region} --certificate-arn ${arn}), or let certkeeper manage it (deploy: [{ type: acm, region: ${region}, arn: ${arn} }])`,
    );
  }

  // 6. Attached to CloudFront with a key CloudFront will not accept.
  const distributions = inUseBy.filter((u) => /^arn:aws[a-z-]*:cloudfront::/.test(u));
  const alg = normalizeAlgorithm(d.KeyAlgorithm);
  if (
    distributions.length > 0 &&
    alg &&
    !CLOUDFRONT_KEY_ALGORITHMS.includes(alg as (typeof ACM_KEY_ALGORITHMS)[number])
  ) {
    add(
      'cloudfront-key',
      'critical',
      `attached to CloudFront (${distributions.join(', ')}) with a ${describeAlgorithm(alg)} key, which CloudFront does not accept; ACM cannot change the key type of an ARN`,
      `issue a replacement with an ${CLOUDFRONT_KEYS_TEXT} key (certkeeper: keyType: ecdsa-p256 with a new acm deployer, which creates a new ARN), attach it to ${distributions.join(', ')}, then delete ${arn}`,
    );
  }
  return out;
}

async function listAll(client: ACMClient, maxPages: number, pageSize: number): Promise<CertificateSummary[]> {
  const out: CertificateSummary[] = [];
  let token: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const res = await client.send(
      new ListCertificatesCommand({
        // Without keyTypes ACM lists only RSA_1024 and RSA_2048 certificates: ask for every key type.
        Includes: { keyTypes: [...ACM_KEY_ALGORITHMS] },
        MaxItems: pageSize,
        ...(token && { NextToken: token }),
      }),
    );
    out.push(...(res.CertificateSummaryList ?? []).filter((s) => s.CertificateArn));
    token = res.NextToken;
    if (!token) return out;
  }
  throw new CertkeeperError('aws', `ACM returned more than ${maxPages} pages of certificates`, {
    code: 'CK_ERR_ACM_AUDIT',
    hint: 'raise maxPages for this account or audit fewer regions at a time',
  });
}

function summaryAsDetail(s: CertificateSummary): CertificateDetail {
  return {
    CertificateArn: s.CertificateArn,
    DomainName: s.DomainName,
    SubjectAlternativeNames: s.SubjectAlternativeNameSummaries,
    Status: s.Status,
    Type: s.Type,
    KeyAlgorithm: s.KeyAlgorithm,
    RenewalEligibility: s.RenewalEligibility,
    NotBefore: s.NotBefore,
    NotAfter: s.NotAfter,
    CreatedAt: s.CreatedAt,
    ImportedAt: s.ImportedAt,
    IssuedAt: s.IssuedAt,
  };
}

async function certkeeperTag(client: ACMClient, arn: string, log: Logger): Promise<string | undefined> {
  try {
    const tags = (await client.send(new ListTagsForCertificateCommand({ CertificateArn: arn }))).Tags ?? [];
    return tags.find((t) => t.Key === CERTKEEPER_TAG)?.Value;
  } catch (err) {
    // Tags only refine a message; a missing permission must not fail the audit.
    log.debug({ arn, error: awsErrorName(err) }, 'ListTagsForCertificate failed');
    return undefined;
  }
}

async function call<T>(region: string, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CertkeeperError) throw err;
    throw new CertkeeperError('aws', `${action} in ${region} failed: ${awsErrorText(err)}`, {
      code: 'CK_ERR_ACM_AUDIT',
      hint: hintForAwsError(err, action, region),
      cause: err,
    });
  }
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return out;
}
