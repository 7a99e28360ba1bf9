/**
 * `certkeeper acm replace`: replaces an ACM certificate that will never renew by itself (validated by e-mail, or
 * stuck in PENDING_VALIDATION) with a DNS-validated one, and swaps it in where it is used.
 *
 *   plan (read-only: DescribeCertificate, ListTagsForCertificate, Route53 zone discovery, what each swap changes)
 *   → RequestCertificate (DNS, IdempotencyToken from the old ARN, tags copied + certkeeper:replaces)
 *   → validation CNAMEs UPSERTed in Route53 (one ChangeBatch per zone, INSYNC) → ISSUED (bounded wait)
 *   → swap on CloudFront and ELBv2 → confirm (InUseBy of both, served certificate over TLS with SNI)
 *   → [--delete-old: DeleteCertificate once nothing uses the old one]
 *
 * Progress is written to the store before and after each step (replace-state.ts), so a second run continues where
 * the first stopped. Never prints, exits or reads the environment: the CLI and the daemon wire it.
 */
import { createHash } from 'node:crypto';
import {
  type ACMClient,
  type CertificateDetail,
  DeleteCertificateCommand,
  DescribeCertificateCommand,
  type KeyAlgorithm,
  ListCertificatesCommand,
  ListTagsForCertificateCommand,
  RequestCertificateCommand,
  type Tag,
} from '@aws-sdk/client-acm';
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Change, Route53Client } from '@aws-sdk/client-route-53';
import { submitChangeBatch, waitInsync, withZoneLock } from '../../challenges/route53/changes.js';
import { findHostedZone, type HostedZone, normalizeName } from '../../challenges/route53/zones.js';
import { asCertkeeperError, CertkeeperError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { sleep } from '../../platform/sleep.js';
import { type HostPort, probeServedCertificate, sameSerial } from '../../verify/tls-probe.js';
import { awsErrorName, awsErrorText, hintForAwsError } from './client.js';
import { CLOUDFRONT_KEY_ALGORITHMS, describeAlgorithm, normalizeAlgorithm, regionOfArn } from './keys.js';
import {
  type ReplaceState,
  ReplaceStateStore,
  type ReplaceStep,
  type SwapRecord,
  stepIndex,
} from './replace-state.js';
import {
  type ResourceKind,
  resourceKind,
  type SwapOutcome,
  swapCloudFront,
  swapLoadBalancer,
} from './replace-swap.js';

export const REPLACES_TAG = 'certkeeper:replaces';
/** Key algorithms RequestCertificate takes that CloudFront also serves. */
const REQUESTABLE_FOR_CLOUDFRONT = ['RSA_2048', 'EC_prime256v1'];
/** ACM keeps an IdempotencyToken for one hour; after that a lost ARN is found again by its tag. */
const IDEMPOTENCY_MS = 3600_000;

export interface ReplaceClients {
  acm(region: string): ACMClient;
  route53(): Route53Client;
  cloudfront(): CloudFrontClient;
  elbv2(region: string): ElasticLoadBalancingV2Client;
}

export interface ReplaceTiming {
  /** Pause between DescribeCertificate calls (grows ×1.5 up to maxPollMs). */
  pollMs: number;
  maxPollMs: number;
  /** Bound for ACM to show the validation CNAMEs after the request. */
  recordsTimeoutMs: number;
  /** Bound for Route53 INSYNC. */
  insyncTimeoutMs: number;
  /** Bound for ISSUED once the CNAMEs are in place (ACM says up to 30 minutes, usually a few). */
  issueTimeoutMs: number;
  /** Bound for InUseBy and the served certificate to show the swap (CloudFront deploys take minutes). */
  confirmTimeoutMs: number;
  /** One TLS handshake. */
  probeTimeoutMs: number;
}

export const DEFAULT_REPLACE_TIMING: ReplaceTiming = {
  pollMs: 5000,
  maxPollMs: 30_000,
  recordsTimeoutMs: 5 * 60_000,
  insyncTimeoutMs: 5 * 60_000,
  issueTimeoutMs: 45 * 60_000,
  confirmTimeoutMs: 15 * 60_000,
  probeTimeoutMs: 3000,
};

export type ReplaceEventStep = ReplaceStep | 'planned' | 'old-deleted' | 'old-kept' | 'failed';

export interface ReplaceEvent {
  step: ReplaceEventStep;
  oldArn: string;
  newArn?: string;
  region: string;
  domain: string;
  message: string;
  resource?: string;
  error?: CertkeeperError;
}

export interface ReplaceDeps {
  clients: ReplaceClients;
  /** <storage> of the configuration: progress goes to <storage>/acm-replace/. */
  storagePath: string;
  logger: Logger;
  timing?: Partial<ReplaceTiming>;
  /**
   * Where to check the served certificate: false skips it; `address` connects there with each name as SNI
   * (a proxy, or a loopback server in tests); by default each name on port 443 where it resolves and answers.
   */
  probe?: false | { address?: HostPort };
  /** Told after each step is written (the daemon alerts from it). An exception here stops the run like a crash. */
  onStep?: (e: ReplaceEvent) => void | Promise<void>;
  signal?: AbortSignal;
  now?: () => Date;
}

export interface PlannedResource {
  arn: string;
  kind: ResourceKind;
  /** What certkeeper changes on it, in words; for kind 'other': nothing (a human swaps it). */
  changes: string[];
  alreadyNew?: boolean;
}

export interface ReplacePlan {
  oldArn: string;
  region: string;
  domainName: string;
  /** Every name of the certificate, the domain name first. */
  names: string[];
  oldStatus: string;
  oldType: string;
  oldValidation: string[];
  oldKeyAlgorithm: string;
  keyAlgorithm: string;
  keyReason: string;
  /** Copied to the replacement, plus certkeeper:replaces=<old ARN>. */
  tags: Tag[];
  idempotencyToken: string;
  /** The old certificate's certificate-transparency preference, kept (DISABLED only when it was). */
  transparencyLogging?: 'ENABLED' | 'DISABLED';
  /** Route53 zone of each validated name (wildcards by their base). */
  zones: { domain: string; zoneId: string; zoneName: string }[];
  resources: PlannedResource[];
  /** InUseBy entries certkeeper does not change: a human swaps them. */
  manual: string[];
  /** Progress of an earlier run, when there is one. */
  progress?: ReplaceState;
}

export interface ProbeResult {
  name: string;
  address: string;
  /** served: the new certificate answers; old: still the old one; other: some other certificate; unreachable. */
  outcome: 'new' | 'old' | 'other' | 'unreachable';
}

export interface ReplaceResult {
  oldArn: string;
  newArn: string;
  region: string;
  swapped: SwapRecord[];
  manual: string[];
  probes: ProbeResult[];
  oldDeleted: boolean;
  /** When --delete-old could not delete: what still uses the old certificate. */
  oldStillUsedBy: string[];
  /** Something is left for a human (manual swaps, an old certificate still in use, a name serving another one). */
  needsHuman: boolean;
}

/** 32 word characters (RequestCertificate's limit), the same for the same old ARN on every run and host. */
export function idempotencyTokenFor(oldArn: string): string {
  return createHash('sha256').update(`certkeeper acm replace ${oldArn}`).digest('hex').slice(0, 32);
}

function timingOf(deps: ReplaceDeps): ReplaceTiming {
  return { ...DEFAULT_REPLACE_TIMING, ...deps.timing };
}

/** An ACM call that failed: which action, on what, and the fix. */
async function acmCall<T>(region: string, action: string, arn: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CertkeeperError) throw err;
    const name = awsErrorName(err);
    const msg = awsErrorText(err);
    throw new CertkeeperError('aws', `${action} on ${arn} failed: ${msg.slice(0, 500)}`, {
      code: name === 'ResourceNotFoundException' ? 'CK_ERR_ACM_NOT_FOUND' : 'CK_ERR_ACM_REPLACE',
      permanent: ['ResourceNotFoundException', 'AccessDeniedException', 'InvalidArnException'].includes(name),
      hint:
        name === 'ResourceNotFoundException'
          ? `no such certificate in ${region}: check the ARN (certkeeper acm audit --region ${region} lists them)`
          : hintForAwsError(err, action, region).replace(
              'certkeeper renew again later',
              'the same command again later',
            ),
      cause: err,
    });
  }
}

async function describe(acm: ACMClient, region: string, arn: string): Promise<CertificateDetail> {
  const r = await acmCall(region, 'acm:DescribeCertificate', arn, () =>
    acm.send(new DescribeCertificateCommand({ CertificateArn: arn })),
  );
  if (!r.Certificate) {
    throw new CertkeeperError('aws', `DescribeCertificate returned nothing for ${arn}`, {
      code: 'CK_ERR_ACM_REPLACE',
      hint: 'run the same command again',
    });
  }
  return r.Certificate;
}

function regionOf(arn: string): string {
  const r = regionOfArn(arn);
  if (!r) {
    throw new CertkeeperError('config', `"${arn}" is not an ACM certificate ARN`, {
      field: 'ARN',
      permanent: true,
      hint: 'pass ARNs as arn:aws:acm:<region>:<account>:certificate/<id> (certkeeper acm audit lists them)',
    });
  }
  return r;
}

/** The key of the replacement: the old one when CloudFront serves it and ACM can request it, else ECDSA P-256. */
export function replacementKey(oldAlg: string | undefined): { keyAlgorithm: string; reason: string } {
  const alg = normalizeAlgorithm(oldAlg) ?? 'RSA_2048';
  if (REQUESTABLE_FOR_CLOUDFRONT.includes(alg))
    return { keyAlgorithm: alg, reason: `kept: CloudFront accepts ${describeAlgorithm(alg)}` };
  const why = (CLOUDFRONT_KEY_ALGORITHMS as readonly string[]).includes(alg)
    ? `ACM cannot request ${describeAlgorithm(alg)}`
    : `CloudFront does not accept ${describeAlgorithm(alg)}`;
  return { keyAlgorithm: 'EC_prime256v1', reason: `${why}: ECDSA P-256 instead` };
}

/** Read-only: everything `replace` would do for one certificate. Throws (changing nothing) when it cannot be done. */
export async function planReplacement(oldArn: string, deps: ReplaceDeps): Promise<ReplacePlan> {
  const region = regionOf(oldArn);
  const store = ReplaceStateStore.forStorage(deps.storagePath);
  const progress = await store.read(oldArn);
  const acm = deps.clients.acm(region);
  if (progress?.step === 'done' && progress.oldDeletedAt && progress.newArn) {
    // Finished, old certificate deleted: nothing left to look at in AWS.
    return finishedPlan(progress);
  }
  const old = await describe(acm, region, oldArn);
  if (old.Type === 'PRIVATE') {
    throw new CertkeeperError(
      'config',
      `${oldArn} is a private CA certificate: acm replace handles public ones`,
      {
        permanent: true,
        hint: 'private certificates renew through AWS Private CA; nothing to replace',
      },
    );
  }
  const domainName = old.DomainName ?? '';
  const names = [domainName, ...(old.SubjectAlternativeNames ?? []).filter((n) => n !== domainName)].filter(
    Boolean,
  );
  const tagsRes = await acmCall(region, 'acm:ListTagsForCertificate', oldArn, () =>
    acm.send(new ListTagsForCertificateCommand({ CertificateArn: oldArn })),
  );
  const tags: Tag[] = [
    ...(tagsRes.Tags ?? []).filter(
      (t) => t.Key && !t.Key.toLowerCase().startsWith('aws:') && t.Key !== REPLACES_TAG,
    ),
    { Key: REPLACES_TAG, Value: oldArn },
  ].slice(-50);
  const key = progress
    ? { keyAlgorithm: progress.keyAlgorithm, reason: 'as requested by the earlier run' }
    : replacementKey(old.KeyAlgorithm);

  // Zones first: a name without a Route53 zone stops here, before anything is requested.
  const zones: ReplacePlan['zones'] = [];
  const r53 = deps.clients.route53();
  for (const d of [...new Set(names.map((n) => normalizeName(n.replace(/^\*\./, ''))))]) {
    let z: HostedZone;
    try {
      z = await findHostedZone(d, false, { client: r53, logger: deps.logger, signal: deps.signal });
    } catch (err) {
      const e = asCertkeeperError(err, 'aws');
      throw new CertkeeperError('aws', `${oldArn}: ${e.message}; nothing was changed`, {
        code: e.code,
        domain: d,
        permanent: e.permanent,
        cause: err,
        hint:
          e.code === 'CK_ERR_DNS_ZONE_NOT_FOUND'
            ? `certkeeper writes ACM's validation CNAMEs in Route53: create a public hosted zone for ${d} (or a parent) in this account, or replace this certificate by hand`
            : e.hint,
      });
    }
    zones.push({ domain: d, zoneId: z.id, zoneName: z.name });
  }

  const inUse = [...new Set([...(old.InUseBy ?? []), ...(progress?.swapped.map((s) => s.resource) ?? [])])];
  const resources: PlannedResource[] = [];
  const manual: string[] = [];
  const done = new Set(progress?.swapped.map((s) => s.resource) ?? []);
  for (const arn of inUse) {
    const kind = resourceKind(arn);
    if (kind === 'other') {
      manual.push(arn);
      resources.push({ arn, kind, changes: [] });
      continue;
    }
    if (done.has(arn)) {
      resources.push({ arn, kind, changes: ['already swapped by an earlier run'], alreadyNew: true });
      continue;
    }
    const ctx = { oldArn, newArn: progress?.newArn, apply: false, logger: deps.logger };
    const o: SwapOutcome =
      kind === 'cloudfront'
        ? await swapCloudFront(deps.clients.cloudfront(), arn, ctx)
        : await swapLoadBalancer(deps.clients.elbv2(arnRegion(arn)), arn, ctx);
    resources.push({
      arn,
      kind,
      changes: o.alreadyNew ? ['already on the new certificate'] : o.notUsing ? [o.notUsing] : o.changes,
      alreadyNew: o.alreadyNew,
    });
  }
  const validations = [...(old.DomainValidationOptions ?? [])].map((v) => v.ValidationMethod ?? 'unknown');
  return {
    oldArn,
    region,
    domainName,
    names,
    oldStatus: old.Status ?? 'unknown',
    oldType: old.Type ?? 'unknown',
    oldValidation: [...new Set(validations)],
    oldKeyAlgorithm: normalizeAlgorithm(old.KeyAlgorithm) ?? 'unknown',
    keyAlgorithm: key.keyAlgorithm,
    keyReason: key.reason,
    tags,
    idempotencyToken: idempotencyTokenFor(oldArn),
    ...(old.Options?.CertificateTransparencyLoggingPreference && {
      transparencyLogging: old.Options.CertificateTransparencyLoggingPreference,
    }),
    zones,
    resources,
    manual,
    ...(progress && { progress }),
  };
}

function finishedPlan(p: ReplaceState): ReplacePlan {
  return {
    oldArn: p.oldArn,
    region: p.region,
    domainName: p.domains[0] ?? '',
    names: p.domains,
    oldStatus: 'DELETED',
    oldType: 'AMAZON_ISSUED',
    oldValidation: [],
    oldKeyAlgorithm: p.keyAlgorithm,
    keyAlgorithm: p.keyAlgorithm,
    keyReason: 'as requested by the earlier run',
    tags: [],
    idempotencyToken: idempotencyTokenFor(p.oldArn),
    zones: [],
    resources: p.swapped.map((s) => ({
      arn: s.resource,
      kind: s.kind,
      changes: ['already swapped by an earlier run'],
      alreadyNew: true,
    })),
    manual: [],
    progress: p,
  };
}

function duration(ms: number): string {
  return ms < 120_000 ? `${Math.ceil(ms / 1000)}s` : `${Math.round(ms / 60_000)} minutes`;
}

function arnRegion(arn: string): string {
  return arn.split(':')[3] ?? 'us-east-1';
}

/** Carries out a plan (or resumes it). Every step is idempotent and recorded before the next one starts. */
export async function executeReplacement(
  plan: ReplacePlan,
  deps: ReplaceDeps & { deleteOld?: boolean },
): Promise<ReplaceResult> {
  const t = timingOf(deps);
  const now = deps.now ?? (() => new Date());
  const store = ReplaceStateStore.forStorage(deps.storagePath);
  const acm = deps.clients.acm(plan.region);
  const log = deps.logger.child({ component: 'acm-replace', oldArn: plan.oldArn });
  let state: ReplaceState = (await store.read(plan.oldArn)) ?? {
    version: 1,
    oldArn: plan.oldArn,
    region: plan.region,
    domains: plan.names,
    keyAlgorithm: plan.keyAlgorithm,
    step: 'requesting',
    swapped: [],
    manual: plan.manual,
    updatedAt: now().toISOString(),
  };
  const save = async (patch: Partial<ReplaceState>) => {
    state = { ...state, ...patch, updatedAt: now().toISOString() };
    await store.write(state);
  };
  const emit = async (step: ReplaceEventStep, message: string, extra: Partial<ReplaceEvent> = {}) => {
    log.info({ event: `acm_replace.${step}`, newArn: state.newArn, ...extra }, message);
    await deps.onStep?.({
      step,
      oldArn: plan.oldArn,
      newArn: state.newArn,
      region: plan.region,
      domain: plan.domainName,
      message,
      ...extra,
    });
  };

  try {
    // 1. Request (the intent is on disk first; the token makes a resent request return the same ARN).
    if (!state.newArn) {
      const firstAt = state.requestedAt ? new Date(state.requestedAt).getTime() : undefined;
      let newArn: string | undefined;
      if (firstAt !== undefined && now().getTime() - firstAt > IDEMPOTENCY_MS - 5 * 60_000) {
        newArn = await findTaggedReplacement(acm, plan);
      }
      if (!newArn) {
        await save({ step: 'requesting', requestedAt: state.requestedAt ?? now().toISOString() });
        const res = await acmCall(plan.region, 'acm:RequestCertificate', plan.oldArn, () =>
          acm.send(
            new RequestCertificateCommand({
              DomainName: plan.domainName,
              SubjectAlternativeNames: plan.names,
              ValidationMethod: 'DNS',
              KeyAlgorithm: plan.keyAlgorithm as KeyAlgorithm,
              IdempotencyToken: plan.idempotencyToken,
              Tags: plan.tags,
              ...(plan.transparencyLogging === 'DISABLED' && {
                Options: { CertificateTransparencyLoggingPreference: 'DISABLED' },
              }),
            }),
          ),
        );
        newArn = res.CertificateArn;
        if (!newArn) {
          throw new CertkeeperError('aws', 'RequestCertificate returned no ARN', {
            code: 'CK_ERR_ACM_REPLACE',
            hint: 'run the same command again (the same IdempotencyToken returns the same certificate)',
          });
        }
      }
      await save({ step: 'requested', newArn });
      await emit(
        'requested',
        `requested ${newArn} (DNS validation, ${describeAlgorithm(plan.keyAlgorithm)}) to replace ${plan.oldArn}`,
      );
    }
    const newArn = state.newArn!;

    // 2. Validation CNAMEs in Route53, then ISSUED.
    let cur = await describe(acm, plan.region, newArn);
    if (cur.Status !== 'ISSUED' && stepIndex(state.step) < stepIndex('records-written')) {
      const records = await waitForRecords(acm, plan, newArn, t, deps.signal);
      await writeRecords(records, plan, deps, t);
      await save({ step: 'records-written', records });
      await emit(
        'records-written',
        `validation CNAMEs for ${newArn} written in Route53 (${[...new Set(records.map((r) => r.zoneId))].join(', ')}) and INSYNC`,
      );
    }
    if (stepIndex(state.step) < stepIndex('issued')) {
      cur = await waitForIssued(acm, plan, newArn, t, deps.signal);
      await save({ step: 'issued' });
      await emit('issued', `${newArn} is ISSUED`);
    }

    // 3. Swap where the old one is used (each swap reads first: nothing is swapped twice).
    if (stepIndex(state.step) < stepIndex('swapped')) {
      const old = await describe(acm, plan.region, plan.oldArn);
      const targets = [...new Set([...(old.InUseBy ?? []), ...plan.resources.map((r) => r.arn)])];
      const manual = new Set(state.manual);
      for (const arn of targets) {
        const kind = resourceKind(arn);
        if (kind === 'other') {
          manual.add(arn);
          continue;
        }
        if (state.swapped.some((s) => s.resource === arn)) continue;
        const ctx = { oldArn: plan.oldArn, newArn, apply: true, logger: log };
        const o =
          kind === 'cloudfront'
            ? await swapCloudFront(deps.clients.cloudfront(), arn, ctx)
            : await swapLoadBalancer(deps.clients.elbv2(arnRegion(arn)), arn, ctx);
        if (o.notUsing) {
          log.info({ event: 'acm_replace.not_using', resource: arn }, `${arn} ${o.notUsing}`);
          continue;
        }
        await save({
          swapped: [
            ...state.swapped,
            {
              resource: arn,
              kind,
              changes: o.alreadyNew ? ['already on the new certificate'] : o.changes,
              at: now().toISOString(),
            },
          ],
          manual: [...manual],
        });
        await emit(
          'swapped',
          `${arn}: ${o.alreadyNew ? 'already on the new certificate' : o.changes.join('; ')}`,
          {
            resource: arn,
          },
        );
      }
      await save({ step: 'swapped', manual: [...manual] });
    }

    // 4. Confirm: InUseBy on both sides, and the certificate served where a name answers.
    let probes: ProbeResult[] = [];
    if (stepIndex(state.step) < stepIndex('confirmed')) {
      probes = await confirm(acm, plan, state, t, deps);
      await save({ step: 'confirmed' });
      await emit(
        'confirmed',
        `${newArn} is in use by ${state.swapped.map((s) => s.resource).join(', ') || 'nothing certkeeper swapped'}; ${plan.oldArn} no longer is`,
      );
    }

    // 5. What still uses the old one: swapped by hand since (a re-run sees that), or still for a human.
    let oldDeleted = state.oldDeletedAt !== undefined;
    const old = oldDeleted
      ? undefined
      : await describe(acm, plan.region, plan.oldArn).catch((err) => {
          if (asCertkeeperError(err).code === 'CK_ERR_ACM_NOT_FOUND') return undefined;
          throw err;
        });
    const oldUsers = old?.InUseBy ?? [];
    const manualLeft = oldUsers.filter((r) => resourceKind(r) === 'other');
    let oldStillUsedBy: string[] = [];
    // 6. The old one goes only when nothing uses it any more.
    if (deps.deleteOld && !oldDeleted) {
      oldStillUsedBy = oldUsers;
      if (!old) {
        oldDeleted = true;
      } else if (oldUsers.length === 0) {
        await acmCall(plan.region, 'acm:DeleteCertificate', plan.oldArn, () =>
          acm.send(new DeleteCertificateCommand({ CertificateArn: plan.oldArn })),
        );
        oldDeleted = true;
      }
      if (oldDeleted) {
        await save({ oldDeletedAt: now().toISOString() });
        await emit('old-deleted', `deleted ${plan.oldArn}: nothing used it any more`);
      } else {
        await emit(
          'old-kept',
          `kept ${plan.oldArn}: still used by ${oldUsers.join(', ')} (swap those by hand, then run with --delete-old again)`,
        );
      }
    }
    await save({ step: 'done', manual: manualLeft, lastError: undefined });
    const result: ReplaceResult = {
      oldArn: plan.oldArn,
      newArn,
      region: plan.region,
      swapped: state.swapped,
      manual: manualLeft,
      probes,
      oldDeleted,
      oldStillUsedBy,
      needsHuman:
        manualLeft.length > 0 || oldStillUsedBy.length > 0 || probes.some((p) => p.outcome === 'other'),
    };
    await emit(
      'done',
      `replaced ${plan.oldArn} with ${newArn}${manualLeft.length ? `; swap by hand on ${manualLeft.join(', ')}` : ''}`,
    );
    return result;
  } catch (err) {
    const e = asCertkeeperError(err, 'aws');
    await save({ lastError: { code: e.code, message: e.message, at: now().toISOString() } }).catch(
      () => undefined,
    );
    await Promise.resolve(
      deps.onStep?.({
        step: 'failed',
        oldArn: plan.oldArn,
        newArn: state.newArn,
        region: plan.region,
        domain: plan.domainName,
        message: e.message,
        error: e,
      }),
    ).catch(() => undefined);
    throw e;
  }
}

/** After the token's hour: the replacement an earlier run requested, by its certkeeper:replaces tag. */
async function findTaggedReplacement(acm: ACMClient, plan: ReplacePlan): Promise<string | undefined> {
  let token: string | undefined;
  for (let page = 0; page < 20; page++) {
    const r = await acmCall(plan.region, 'acm:ListCertificates', plan.oldArn, () =>
      acm.send(
        new ListCertificatesCommand({
          CertificateStatuses: ['PENDING_VALIDATION', 'ISSUED'],
          Includes: { keyTypes: [plan.keyAlgorithm as KeyAlgorithm] },
          MaxItems: 1000,
          ...(token && { NextToken: token }),
        }),
      ),
    );
    for (const s of r.CertificateSummaryList ?? []) {
      if (s.DomainName !== plan.domainName || !s.CertificateArn || s.CertificateArn === plan.oldArn) continue;
      const tags = await acmCall(plan.region, 'acm:ListTagsForCertificate', s.CertificateArn, () =>
        acm.send(new ListTagsForCertificateCommand({ CertificateArn: s.CertificateArn })),
      );
      if (tags.Tags?.some((x) => x.Key === REPLACES_TAG && x.Value === plan.oldArn)) return s.CertificateArn;
    }
    token = r.NextToken;
    if (!token) return undefined;
  }
  return undefined;
}

async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, signal).catch(() => undefined);
  if (signal?.aborted) {
    throw new CertkeeperError('aws', 'acm replace was stopped', {
      code: 'CK_ERR_ACM_REPLACE_STOPPED',
      hint: 'run the same command again: it continues where it stopped',
    });
  }
}

type ValidationRecord = NonNullable<ReplaceState['records']>[number];

async function waitForRecords(
  acm: ACMClient,
  plan: ReplacePlan,
  newArn: string,
  t: ReplaceTiming,
  signal?: AbortSignal,
): Promise<ValidationRecord[]> {
  const deadline = Date.now() + t.recordsTimeoutMs;
  let wait = t.pollMs;
  for (let i = 0; i < 10_000; i++) {
    const d = await describe(acm, plan.region, newArn);
    const dvos = d.DomainValidationOptions ?? [];
    const ready = dvos.length > 0 && dvos.every((v) => v.ResourceRecord?.Name && v.ResourceRecord.Value);
    if (ready) {
      const out: ValidationRecord[] = [];
      for (const v of dvos) {
        const rr = v.ResourceRecord!;
        const name = normalizeName(rr.Name!);
        const base = normalizeName((v.DomainName ?? '').replace(/^\*\./, ''));
        // ACM's record must sit under the name it validates, in a zone from the plan: nothing else is written.
        const zone = plan.zones.find((z) => z.domain === base);
        if (
          rr.Type !== 'CNAME' ||
          !zone ||
          !(name === base || name.endsWith(`.${base}`)) ||
          !/^[a-z0-9_.-]+$/.test(name)
        ) {
          throw new CertkeeperError(
            'aws',
            `ACM asked for an unexpected validation record ${rr.Type} ${rr.Name} for ${v.DomainName}`,
            {
              code: 'CK_ERR_ACM_REPLACE',
              permanent: true,
              hint: 'nothing was written in Route53; look at the certificate in the ACM console',
            },
          );
        }
        if (!/^[A-Za-z0-9_.-]+$/.test(rr.Value!)) {
          throw new CertkeeperError('aws', `ACM returned an unexpected CNAME value for ${rr.Name}`, {
            code: 'CK_ERR_ACM_REPLACE',
            permanent: true,
            hint: 'nothing was written in Route53; look at the certificate in the ACM console',
          });
        }
        if (!out.some((r) => r.name === name)) out.push({ zoneId: zone.zoneId, name, value: rr.Value! });
      }
      return out;
    }
    if (d.Status && d.Status !== 'PENDING_VALIDATION') throw notIssued(d, plan, newArn);
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new CertkeeperError(
        'aws',
        `ACM showed no validation records for ${newArn} within ${Math.round(t.recordsTimeoutMs / 1000)}s`,
        {
          code: 'CK_ERR_ACM_REPLACE_TIMEOUT',
          hint: 'ACM usually shows them within seconds: run the same command again (it continues with the same certificate)',
        },
      );
    }
    await pause(Math.min(wait, left), signal);
    wait = Math.min(Math.round(wait * 1.5), t.maxPollMs);
  }
  throw new CertkeeperError('aws', 'gave up waiting for validation records', {
    code: 'CK_ERR_ACM_REPLACE_TIMEOUT',
  });
}

/** One UPSERT ChangeBatch per zone (through the DNS-01 provider's code), then INSYNC for each. */
async function writeRecords(
  records: ValidationRecord[],
  plan: ReplacePlan,
  deps: ReplaceDeps,
  t: ReplaceTiming,
): Promise<void> {
  const client = deps.clients.route53();
  const ctx = { client, logger: deps.logger, signal: deps.signal };
  const byZone = new Map<string, ValidationRecord[]>();
  for (const r of records) byZone.set(r.zoneId, [...(byZone.get(r.zoneId) ?? []), r]);
  const changes: { zoneId: string; changeId?: string }[] = [];
  for (const [zoneId, list] of byZone) {
    const batch: Change[] = list.map((r) => ({
      Action: 'UPSERT',
      ResourceRecordSet: {
        Name: `${r.name}.`,
        Type: 'CNAME',
        TTL: 300,
        ResourceRecords: [{ Value: r.value }],
      },
    }));
    const changeId = await withZoneLock(zoneId, () =>
      submitChangeBatch(zoneId, batch, `certkeeper acm replace ${plan.oldArn.split('/').pop()}`, ctx),
    );
    changes.push({ zoneId, changeId });
  }
  const deadline = Date.now() + t.insyncTimeoutMs;
  for (const c of changes) {
    if (!c.changeId) continue;
    await waitInsync(
      {
        zoneId: c.zoneId,
        changeId: c.changeId,
        deadline,
        pollMs: Math.min(t.pollMs, 2000),
        maxPollMs: t.maxPollMs,
        timeoutSeconds: Math.round(t.insyncTimeoutMs / 1000),
        hint: 'Route53 normally syncs within a minute: check the AWS Health Dashboard and run the same command again (it continues)',
      },
      ctx,
    );
  }
}

function notIssued(d: CertificateDetail, plan: ReplacePlan, newArn: string): CertkeeperError {
  const reason = d.FailureReason;
  return new CertkeeperError('aws', `${newArn} is ${d.Status}${reason ? ` (${reason})` : ''}, not ISSUED`, {
    code: 'CK_ERR_ACM_REPLACE_FAILED',
    permanent: true,
    hint:
      reason === 'CAA_ERROR'
        ? `a CAA record on ${plan.names.join(', ')} (or a parent) forbids Amazon: add the CAA record 0 issue "amazon.com" beside the others, delete ${newArn} and its progress file under <storage>/acm-replace/, and run again`
        : `look at ${newArn} in the ACM console; then delete it and the progress file under <storage>/acm-replace/ to request a new one`,
  });
}

async function waitForIssued(
  acm: ACMClient,
  plan: ReplacePlan,
  newArn: string,
  t: ReplaceTiming,
  signal?: AbortSignal,
): Promise<CertificateDetail> {
  const deadline = Date.now() + t.issueTimeoutMs;
  let wait = t.pollMs;
  for (let i = 0; i < 10_000; i++) {
    const d = await describe(acm, plan.region, newArn);
    if (d.Status === 'ISSUED') return d;
    if (d.Status !== 'PENDING_VALIDATION') throw notIssued(d, plan, newArn);
    const left = deadline - Date.now();
    if (left <= 0) {
      const zones = plan.zones.map((z) => `${z.zoneName} (${z.zoneId})`).join(', ');
      throw new CertkeeperError(
        'aws',
        `${newArn} is still PENDING_VALIDATION ${duration(t.issueTimeoutMs)} after its CNAMEs were written`,
        {
          code: 'CK_ERR_ACM_REPLACE_TIMEOUT',
          hint: `ACM reads the CNAMEs from public DNS: check that ${zones} is the zone the registrar delegates to (dig NS), and that no CAA record forbids amazon.com; then run the same command again (it continues with the same certificate)`,
        },
      );
    }
    await pause(Math.min(wait, left), signal);
    wait = Math.min(Math.round(wait * 1.5), t.maxPollMs);
  }
  throw new CertkeeperError('aws', 'gave up waiting for ISSUED', { code: 'CK_ERR_ACM_REPLACE_TIMEOUT' });
}

async function probeAll(
  names: string[],
  serials: { new?: string; old?: string },
  deps: ReplaceDeps,
  t: ReplaceTiming,
): Promise<ProbeResult[]> {
  if (deps.probe === false) return [];
  const out: ProbeResult[] = [];
  for (const name of names.filter((n) => !n.startsWith('*.'))) {
    const target = deps.probe?.address ?? { host: name, port: 443 };
    const address = `${target.host}:${target.port}`;
    try {
      const served = await probeServedCertificate(target, name, t.probeTimeoutMs);
      const outcome =
        serials.new && sameSerial(served.serial, serials.new)
          ? 'new'
          : serials.old && sameSerial(served.serial, serials.old)
            ? 'old'
            : 'other';
      out.push({ name, address, outcome });
    } catch {
      out.push({ name, address, outcome: 'unreachable' });
    }
  }
  return out;
}

async function confirm(
  acm: ACMClient,
  plan: ReplacePlan,
  state: ReplaceState,
  t: ReplaceTiming,
  deps: ReplaceDeps,
): Promise<ProbeResult[]> {
  const deadline = Date.now() + t.confirmTimeoutMs;
  const swapped = state.swapped.map((s) => s.resource);
  let wait = t.pollMs;
  let missing: string[] = [];
  let lingering: string[] = [];
  let probes: ProbeResult[] = [];
  for (let i = 0; i < 10_000; i++) {
    const [n, o] = await Promise.all([
      describe(acm, plan.region, state.newArn!),
      describe(acm, plan.region, plan.oldArn),
    ]);
    missing = swapped.filter((r) => !(n.InUseBy ?? []).includes(r));
    lingering = swapped.filter((r) => (o.InUseBy ?? []).includes(r));
    probes = swapped.length ? await probeAll(plan.names, { new: n.Serial, old: o.Serial }, deps, t) : [];
    const stillOld = probes.filter((p) => p.outcome === 'old');
    if (missing.length === 0 && lingering.length === 0 && stillOld.length === 0) return probes;
    const left = deadline - Date.now();
    if (left <= 0) break;
    await pause(Math.min(wait, left), deps.signal);
    wait = Math.min(Math.round(wait * 1.5), t.maxPollMs);
  }
  const parts = [
    missing.length && `the new certificate's InUseBy lacks ${missing.join(', ')}`,
    lingering.length && `the old one's InUseBy still lists ${lingering.join(', ')}`,
    probes.some((p) => p.outcome === 'old') &&
      `${probes
        .filter((p) => p.outcome === 'old')
        .map((p) => `${p.name} (${p.address})`)
        .join(', ')} still serve the old certificate`,
  ].filter(Boolean);
  throw new CertkeeperError(
    'aws',
    `the swap is not confirmed after ${Math.round(t.confirmTimeoutMs / 1000)}s: ${parts.join('; ')}`,
    {
      code: 'CK_ERR_ACM_REPLACE_CONFIRM',
      hint: 'CloudFront takes several minutes to deploy a change and ACM updates InUseBy with a delay: run the same command again later to check again (nothing is swapped twice)',
    },
  );
}

/** Rules whose certificates `replace` fixes: those that will never renew by themselves. */
export const REPLACEABLE_RULES = ['email-validation', 'pending-validation'] as const;

/** The ARNs of the findings `replace --findings` (and the daemon with acmAudit.replace) takes, once each. */
export function findingsToReplace(findings: { arn: string; rule: string }[]): string[] {
  return [
    ...new Set(
      findings.filter((f) => (REPLACEABLE_RULES as readonly string[]).includes(f.rule)).map((f) => f.arn),
    ),
  ];
}

/** The exact command for a finding, as the audit alert carries it. */
export function replaceCommandFor(arn: string): string {
  return `certkeeper acm replace ${arn} --dry-run, then again with --yes`;
}
