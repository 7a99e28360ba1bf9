import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acmClientFor } from '../../../test/fakes/acm-context.js';
import { type FakeAcm, startFakeAcm } from '../../../test/fakes/acm-server.js';
import { CertkeeperError } from '../../errors.js';
import { type Finding, runAcmAudit, summarizeFindings } from './audit.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const DAY = 86_400_000;
const days = (n: number) => new Date(NOW.getTime() + n * DAY);
const ALB = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188';
const CF = 'arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL';

let fake: FakeAcm;
const arn: Record<string, string> = {};

/** One inventory with a certificate per rule, plus healthy ones that must stay quiet. */
function seedInventory() {
  fake.certificates.clear();
  const common = { notBefore: days(-30), createdAt: days(-30) };
  arn.email = fake.seed({
    ...common,
    domainName: 'mail-validated.example.test',
    subjectAlternativeNames: ['mail-validated.example.test', 'www.mail-validated.example.test'],
    type: 'AMAZON_ISSUED',
    validationMethod: 'EMAIL',
    notAfter: days(200),
    inUseBy: [ALB],
  }).arn;
  arn.pendingOld = fake.seed({
    domainName: 'pending-old.example.test',
    type: 'AMAZON_ISSUED',
    status: 'PENDING_VALIDATION',
    createdAt: days(-2),
  }).arn;
  arn.pendingNew = fake.seed({
    domainName: 'pending-new.example.test',
    type: 'AMAZON_ISSUED',
    status: 'PENDING_VALIDATION',
    createdAt: new Date(NOW.getTime() - 2 * 3_600_000),
  }).arn;
  arn.ineligible = fake.seed({
    ...common,
    domainName: 'ineligible.example.test',
    type: 'AMAZON_ISSUED',
    renewalEligibility: 'INELIGIBLE',
    renewalStatus: 'FAILED',
    renewalStatusReason: 'CAA_ERROR',
    notAfter: days(120),
    inUseBy: [ALB],
  }).arn;
  arn.expiring = fake.seed({
    ...common,
    domainName: 'expiring.example.test',
    type: 'AMAZON_ISSUED',
    notAfter: days(10),
    inUseBy: [ALB],
  }).arn;
  arn.unmanaged = fake.seed({
    ...common,
    domainName: 'hand-imported.example.test',
    type: 'IMPORTED',
    keyAlgorithm: 'RSA_2048',
    notAfter: days(70),
    inUseBy: [ALB],
    tags: [{ Key: 'certkeeper:name', Value: 'old-host-cert' }],
  }).arn;
  arn.cloudfrontP384 = fake.seed({
    ...common,
    domainName: 'cdn.example.test',
    type: 'IMPORTED',
    keyAlgorithm: 'EC_secp384r1',
    notAfter: days(60),
    inUseBy: [CF],
  }).arn;
  arn.managed = fake.seed({
    ...common,
    domainName: 'managed.example.test',
    type: 'IMPORTED',
    keyAlgorithm: 'EC_prime256v1',
    notAfter: days(60),
    inUseBy: [CF],
  }).arn;
  arn.healthy = fake.seed({
    ...common,
    domainName: 'healthy.example.test',
    type: 'AMAZON_ISSUED',
    keyAlgorithm: 'EC_prime256v1',
    notAfter: days(300),
    inUseBy: [CF],
  }).arn;
  arn.euUnused = fake.seed({
    ...common,
    region: 'eu-west-1',
    domainName: 'eu.example.test',
    type: 'IMPORTED',
    keyAlgorithm: 'EC_prime256v1',
    notAfter: days(80),
  }).arn;
}

const audit = (extra: Partial<Parameters<typeof runAcmAudit>[0]> = {}) =>
  runAcmAudit({
    regions: ['us-east-1', 'eu-west-1'],
    expiringDays: 30,
    managedArns: new Set([arn.managed!, arn.cloudfrontP384!]),
    now: NOW,
    clientFor: (region) => acmClientFor(fake, region),
    pageSize: 3,
    ...extra,
  });

const byArn = (findings: Finding[], a: string) => findings.filter((f) => f.arn === a).map((f) => f.rule);

beforeAll(async () => {
  fake = await startFakeAcm({ now: () => NOW });
  seedInventory();
});
afterAll(async () => {
  await fake?.close();
});

describe('runAcmAudit over a seeded inventory', () => {
  it('flags every rule once, on the right certificate, each with a fix; healthy and managed ones stay quiet', async () => {
    const findings = await audit();
    expect(byArn(findings, arn.email!)).toEqual(['email-validation']);
    expect(byArn(findings, arn.pendingOld!)).toEqual(['pending-validation']);
    expect(byArn(findings, arn.pendingNew!)).toEqual([]);
    expect(byArn(findings, arn.ineligible!)).toEqual(['renewal-ineligible']);
    expect(byArn(findings, arn.expiring!)).toEqual(['expiring']);
    expect(byArn(findings, arn.unmanaged!)).toEqual(['unmanaged-import']);
    expect(byArn(findings, arn.cloudfrontP384!)).toEqual(['cloudfront-key']);
    expect(byArn(findings, arn.managed!)).toEqual([]);
    expect(byArn(findings, arn.healthy!)).toEqual([]);
    expect(byArn(findings, arn.euUnused!)).toEqual(['unmanaged-import']);
    expect(findings).toHaveLength(7);

    for (const f of findings) {
      expect(f.fix.length).toBeGreaterThan(20);
      expect(f.message.length).toBeGreaterThan(20);
    }
    const get = (a: string) => findings.find((f) => f.arn === a)!;
    expect(get(arn.email!)).toMatchObject({
      severity: 'critical',
      region: 'us-east-1',
      domain: 'mail-validated.example.test',
    });
    expect(get(arn.email!).fix).toContain(`run certkeeper acm replace ${arn.email}`);
    expect(get(arn.email!).fix).toContain('--validation-method DNS');
    expect(get(arn.email!).fix).toContain('--subject-alternative-names www.mail-validated.example.test');
    expect(get(arn.email!).fix).toContain(ALB);
    expect(get(arn.pendingOld!).message).toContain('requested 48 hours ago');
    expect(get(arn.ineligible!).message).toContain('CAA_ERROR');
    expect(get(arn.expiring!).message).toContain('expires in 10 days');
    expect(get(arn.unmanaged!).message).toContain('tagged certkeeper:name=old-host-cert');
    expect(get(arn.unmanaged!).fix).toContain(`arn: ${arn.unmanaged}`);
    expect(get(arn.cloudfrontP384!).message).toContain('ECDSA P-384');
    expect(get(arn.cloudfrontP384!).fix).toContain(CF);
    expect(get(arn.euUnused!)).toMatchObject({ severity: 'warning', region: 'eu-west-1' });
    // Critical first.
    expect(findings.findIndex((f) => f.severity === 'warning')).toBeGreaterThan(
      findings.findLastIndex((f) => f.severity === 'critical'),
    );

    const summary = summarizeFindings(findings);
    expect(summary['unmanaged-import']).toEqual({ critical: 1, warning: 1 });
    expect(summary['cloudfront-key']).toEqual({ critical: 1, warning: 0 });
  });

  it('asks ListCertificates for every key type and follows NextToken', async () => {
    fake.requests.length = 0;
    await audit({ regions: ['us-east-1'] });
    const lists = fake.requests.filter((r) => r.op === 'ListCertificates');
    expect(lists.length).toBe(3); // 9 certificates in us-east-1, 3 per page
    expect((lists[0]!.body.Includes as { keyTypes: string[] }).keyTypes).toContain('EC_secp384r1');
    expect(lists[1]!.body.NextToken).toBeTypeOf('string');
  });

  it('flags expiring within the configured window only; a managed certificate just inside it is a warning', async () => {
    const f10 = await audit({ expiringDays: 10 });
    expect(byArn(f10, arn.expiring!)).toEqual([]);
    const f90 = await audit({ expiringDays: 90 });
    expect(byArn(f90, arn.managed!)).toEqual(['expiring']);
    expect(f90.find((f) => f.arn === arn.managed)!.severity).toBe('warning'); // certkeeper renews it soon
    expect(f90.find((f) => f.arn === arn.managed)!.fix).toContain('certkeeper');
  });

  it('rides out throttling and reports a denied call as an aws error with the fix', async () => {
    fake.throttle(2, 'DescribeCertificate');
    expect(await audit()).toHaveLength(7);
    fake.failNext(
      'ListCertificates',
      1,
      'AccessDeniedException',
      'not authorized to perform acm:ListCertificates',
    );
    const err = await audit().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CertkeeperError);
    expect((err as CertkeeperError).kind).toBe('aws');
    expect((err as CertkeeperError).message).toContain(
      'acm:ListCertificates in us-east-1 failed: AccessDeniedException',
    );
    expect((err as CertkeeperError).hint).toContain('IAM policy');
  });
});
