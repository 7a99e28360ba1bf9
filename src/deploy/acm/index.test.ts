import { X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCa, makeEd25519Issued, makeIssued, type TestCa } from '../../../test/fakes/acm-certs.js';
import { acmClientFor, memoryContext } from '../../../test/fakes/acm-context.js';
import { type FakeAcm, startFakeAcm } from '../../../test/fakes/acm-server.js';
import { CertkeeperError } from '../../errors.js';
import { silentLogger } from '../../log.js';
import { type AcmDeployState, create } from './index.js';
import { type AcmDeployConfig, acmDeploySchema } from './schema.js';

let fake: FakeAcm;
let ca: TestCa;

beforeAll(async () => {
  [fake, ca] = await Promise.all([startFakeAcm(), makeCa()]);
});
afterAll(async () => {
  await fake?.close();
});
afterEach(() => {
  fake.requests.length = 0;
  fake.tamperDescribe = undefined;
  fake.certificates.clear();
  vi.unstubAllEnvs();
});

const config = (c: Partial<AcmDeployConfig> = {}): AcmDeployConfig =>
  acmDeploySchema.parse({ type: 'acm', ...c });
const deployer = (c: AcmDeployConfig, region = c.region) =>
  create(c, {
    logger: silentLogger,
    client: acmClientFor(fake, region),
    retry: { attempts: 3, delaysMs: [5, 5] },
  });

async function rejection(p: Promise<unknown>): Promise<CertkeeperError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CertkeeperError);
  return err as CertkeeperError;
}

describe('acm deployer', () => {
  it('imports first (tags, leaf only, intermediates only), keeps the ARN in state, then re-imports into the same ARN', async () => {
    const c = config({ tags: { team: 'web', env: 'prod' } });
    const ctx = memoryContext();
    const first = await makeIssued(ca, { name: 'shop' });

    const r1 = await deployer(c).deploy(first, ctx);
    expect(r1.ok).toBe(true);
    expect(r1.observedSerial).toBe(first.serial);
    const st1 = ctx.state['acm:us-east-1'] as AcmDeployState;
    expect(st1.arn).toMatch(/^arn:aws:acm:us-east-1:\d{12}:certificate\//);
    expect(st1.keyAlgorithm).toBe('EC_prime256v1');
    expect(st1.serial).toBe(first.serial);
    expect(fake.ops()).toEqual(['ImportCertificate', 'DescribeCertificate']);

    const stored = fake.certificates.get(st1.arn)!;
    expect(stored.tags).toEqual([
      { Key: 'team', Value: 'web' },
      { Key: 'env', Value: 'prod' },
      { Key: 'certkeeper:name', Value: 'shop' },
    ]);
    // Certificate = the leaf alone, CertificateChain = the intermediate alone.
    expect(stored.lastImport!.certificate).toBe(first.certPem);
    expect(stored.lastImport!.chain).toBe(first.chainPem);
    expect(new X509Certificate(stored.lastImport!.chain!).subject).toContain('intermediate');
    expect(stored.domainName).toBe('www.example.test');
    expect(stored.subjectAlternativeNames).toEqual(['www.example.test', 'example.test']);

    fake.requests.length = 0;
    const renewed = await makeIssued(ca, { name: 'shop', notAfter: new Date(Date.now() + 80 * 86400_000) });
    const r2 = await deployer(c).deploy(renewed, ctx);
    expect(r2.ok).toBe(true);
    expect(r2.detail).toContain(`re-imported into ${st1.arn}`);
    const imp = fake.requests.find((r) => r.op === 'ImportCertificate')!;
    expect(imp.body.CertificateArn).toBe(st1.arn);
    expect(imp.body.Tags).toBeUndefined();
    expect(fake.certificates.size).toBe(1);
    expect((ctx.state['acm:us-east-1'] as AcmDeployState).arn).toBe(st1.arn);
    expect((ctx.state['acm:us-east-1'] as AcmDeployState).serial).toBe(renewed.serial);
    expect(stored.notAfter!.getTime()).toBe(renewed.notAfter.getTime());
    // Tags already there: looked at, nothing added.
    expect(fake.ops()).toEqual(['ImportCertificate', 'DescribeCertificate', 'ListTagsForCertificate']);

    // A tag added to the config later reaches the certificate through AddTagsToCertificate, not the import.
    fake.requests.length = 0;
    const r3 = await deployer(config({ tags: { team: 'web', env: 'prod', cost: 'cdn' } })).deploy(
      renewed,
      ctx,
    );
    expect(r3.detail).toContain('tags cost added');
    expect(fake.ops()).toEqual([
      'ImportCertificate',
      'DescribeCertificate',
      'ListTagsForCertificate',
      'AddTagsToCertificate',
    ]);
    expect(stored.tags).toContainEqual({ Key: 'cost', Value: 'cdn' });
  });

  it('sends intermediates only even when the chain file repeats the leaf', async () => {
    const cert = await makeIssued(ca);
    const ctx = memoryContext();
    await deployer(config()).deploy({ ...cert, chainPem: cert.fullchainPem }, ctx);
    const stored = fake.certificates.get((ctx.state['acm:us-east-1'] as AcmDeployState).arn)!;
    expect(stored.lastImport!.chain).toBe(cert.chainPem);
  });

  it('re-imports into a configured arn after checking it with DescribeCertificate', async () => {
    const existing = fake.seed({
      domainName: 'www.example.test',
      type: 'IMPORTED',
      keyAlgorithm: 'EC_prime256v1',
      inUseBy: ['arn:aws:cloudfront::123456789012:distribution/E1'],
    });
    const ctx = memoryContext();
    const cert = await makeIssued(ca, { name: 'adopted' });
    const r = await deployer(config({ arn: existing.arn, cloudfront: true })).deploy(cert, ctx);
    expect(r.ok).toBe(true);
    expect(fake.ops()).toEqual([
      'DescribeCertificate',
      'ImportCertificate',
      'DescribeCertificate',
      'ListTagsForCertificate',
      'AddTagsToCertificate',
    ]);
    expect(fake.certificates.size).toBe(1);
    expect(existing.tags).toEqual([{ Key: 'certkeeper:name', Value: 'adopted' }]);
    expect((ctx.state['acm:us-east-1'] as AcmDeployState).arn).toBe(existing.arn);
  });

  describe('guards, before any AWS call', () => {
    it('refuses a key type ACM cannot import (Ed25519, RSA 1536)', async () => {
      for (const cert of [await makeEd25519Issued(ca), await makeIssued(ca, { key: 'rsa-1536' })]) {
        const err = await rejection(deployer(config()).deploy(cert, memoryContext()));
        expect(err.code).toBe('CK_ERR_ACM_KEY_TYPE');
        expect(err.kind).toBe('deploy');
        expect(err.permanent).toBe(true);
        expect(err.message).toMatch(/ACM cannot import (a key of type Ed25519|an RSA 1536-bit key)/);
        expect(err.hint).toContain('keyType: ecdsa-p256');
      }
      expect(fake.requests).toHaveLength(0);
    });

    it('with cloudfront: true, refuses ECDSA P-384 and P-521 but takes RSA 2048/3072/4096 and ECDSA P-256', async () => {
      for (const key of ['ecdsa-p384', 'ecdsa-p521'] as const) {
        const err = await rejection(
          deployer(config({ cloudfront: true })).deploy(await makeIssued(ca, { key }), memoryContext()),
        );
        expect(err.code).toBe('CK_ERR_ACM_CLOUDFRONT_KEY');
        expect(err.hint).toMatch(/RSA 2048, 3072 or 4096, or ECDSA P-256/);
      }
      expect(fake.requests).toHaveLength(0);
      for (const key of ['ecdsa-p256', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const) {
        const r = await deployer(config({ cloudfront: true })).deploy(
          await makeIssued(ca, { key }),
          memoryContext(),
        );
        expect(r.ok).toBe(true);
      }
      // Without cloudfront, P-384 is fine (ALB takes every ACM algorithm).
      expect(
        (await deployer(config()).deploy(await makeIssued(ca, { key: 'ecdsa-p384' }), memoryContext())).ok,
      ).toBe(true);
    });

    it('keeps the key algorithm of the ARN in state', async () => {
      const ctx = memoryContext({
        'acm:us-east-1': {
          arn: 'arn:aws:acm:us-east-1:123456789012:certificate/abc-1',
          keyAlgorithm: 'EC_prime256v1',
        },
      });
      const err = await rejection(deployer(config()).deploy(await makeIssued(ca, { key: 'rsa-2048' }), ctx));
      expect(err.code).toBe('CK_ERR_ACM_KEY_CHANGE');
      expect(err.message).toContain('holds a ECDSA P-256 key');
      expect(err.hint).toContain('set keyType: ecdsa-p256 back');
      expect(err.hint).toContain('delete "acm:us-east-1" under deploy in state/site.json');
      expect(fake.requests).toHaveLength(0);
    });

    it('checks a configured arn with DescribeCertificate only: key algorithm and type', async () => {
      const rsa = fake.seed({ domainName: 'a.example.test', type: 'IMPORTED', keyAlgorithm: 'RSA_2048' });
      const err = await rejection(
        deployer(config({ arn: rsa.arn })).deploy(await makeIssued(ca), memoryContext()),
      );
      expect(err.code).toBe('CK_ERR_ACM_KEY_CHANGE');
      expect(err.hint).toContain('set keyType: rsa-2048 back');
      const issued = fake.seed({
        domainName: 'b.example.test',
        type: 'AMAZON_ISSUED',
        keyAlgorithm: 'EC_prime256v1',
      });
      const err2 = await rejection(
        deployer(config({ arn: issued.arn })).deploy(await makeIssued(ca), memoryContext()),
      );
      expect(err2.code).toBe('CK_ERR_ACM_NOT_IMPORTED');
      expect(fake.ops()).toEqual(['DescribeCertificate', 'DescribeCertificate']);
    });

    it('refuses a key that does not belong to the certificate', async () => {
      const a = await makeIssued(ca);
      const b = await makeIssued(ca);
      const err = await rejection(deployer(config()).deploy({ ...a, keyPem: b.keyPem }, memoryContext()));
      expect(err.code).toBe('CK_ERR_ACM_KEY_MISMATCH');
      expect(fake.requests).toHaveLength(0);
    });

    it('never sends tags on a re-import (ACM rejects them) and the schema explains bad tags and arns', async () => {
      // The deployer's side is asserted in the first test (Tags undefined on re-import); here: config-time checks.
      const bad = acmDeploySchema.safeParse({ type: 'acm', tags: { 'aws:owner': 'x' } });
      expect(bad.success).toBe(false);
      expect(JSON.stringify(bad.error?.issues)).toContain('reserved by AWS');
      const wrongRegion = acmDeploySchema.safeParse({
        type: 'acm',
        region: 'eu-west-1',
        arn: 'arn:aws:acm:us-east-1:123456789012:certificate/abc',
      });
      expect(JSON.stringify(wrongRegion.error?.issues)).toContain('set region to the ARN');
      const cf = acmDeploySchema.safeParse({ type: 'acm', region: 'eu-west-1', cloudfront: true });
      expect(JSON.stringify(cf.error?.issues)).toContain(
        'CloudFront only uses ACM certificates in us-east-1',
      );
    });

    it('skips a self-signed placeholder', async () => {
      const r = await deployer(config()).deploy(
        { ...(await makeIssued(ca)), placeholder: true },
        memoryContext(),
      );
      expect(r).toMatchObject({ ok: true, detail: expect.stringContaining('skipped') });
      expect(fake.requests).toHaveLength(0);
    });
  });

  it('retries throttling: the SDK first, then the deployer with its own backoff', async () => {
    fake.throttle(2);
    const ctx = memoryContext();
    expect((await deployer(config()).deploy(await makeIssued(ca), ctx)).ok).toBe(true);
    // Two throttled ImportCertificate calls, then the real one (the SDK retried within one attempt).
    expect(fake.ops().slice(0, 3)).toEqual(['ImportCertificate', 'ImportCertificate', 'ImportCertificate']);
    expect(fake.certificates.size).toBe(1);

    // With the SDK's own retries off, the deployer's loop (3 attempts) rides out two throttled calls.
    fake.requests.length = 0;
    fake.throttle(2, 'ImportCertificate');
    const noSdkRetry = create(config(), {
      logger: silentLogger,
      client: acmClientFor(fake, 'us-east-1', 1),
      retry: { attempts: 3, delaysMs: [5, 5] },
    });
    const r = await noSdkRetry.deploy(await makeIssued(ca), ctx);
    expect(r.ok).toBe(true);
    expect(fake.ops().filter((o) => o === 'ImportCertificate')).toHaveLength(3);
    expect(fake.certificates.size).toBe(1);
  });

  it('fails as a deploy error when DescribeCertificate does not show the new serial, keeping the ARN for the next try', async () => {
    const ctx = memoryContext();
    fake.tamperDescribe = (d) => ({ ...d, Serial: '01:02:03' });
    const cert = await makeIssued(ca, { name: 'cdn' });
    const err = await rejection(deployer(config()).deploy(cert, ctx));
    expect(err.kind).toBe('deploy');
    expect(err.code).toBe('CK_ERR_ACM_CONFIRM');
    expect(err.message).toContain('ACM shows serial 01:02:03');
    expect(err.message).toContain('after 3 attempts');
    expect(err.hint).toContain('re-imports on its next run');
    // The first import created one certificate; the retries re-imported into it instead of creating more.
    expect(fake.certificates.size).toBe(1);
    const arn = (ctx.state['acm:us-east-1'] as AcmDeployState).arn;
    const imports = fake.requests.filter((r) => r.op === 'ImportCertificate');
    expect(imports.map((r) => r.body.CertificateArn)).toEqual([undefined, arn, arn]);
    expect(JSON.stringify(err.toJSON())).not.toContain('PRIVATE KEY');

    fake.tamperDescribe = undefined;
    expect((await deployer(config()).deploy(cert, ctx)).ok).toBe(true);
  });

  it('does not retry a permanent AWS error and says how to fix it', async () => {
    fake.failNext(
      'ImportCertificate',
      1,
      'AccessDeniedException',
      'User is not authorized to perform: acm:ImportCertificate',
    );
    const err = await rejection(deployer(config()).deploy(await makeIssued(ca), memoryContext()));
    expect(err.message).toContain('AccessDeniedException');
    expect(err.permanent).toBe(true);
    expect(err.hint).toContain('minimal IAM policy');
    expect(fake.ops()).toEqual(['ImportCertificate']);
  });

  it('explains an ARN in state that was deleted in ACM', async () => {
    const ctx = memoryContext({
      'acm:us-east-1': {
        arn: 'arn:aws:acm:us-east-1:123456789012:certificate/deleted-1',
        keyAlgorithm: 'EC_prime256v1',
      },
    });
    const err = await rejection(deployer(config()).deploy(await makeIssued(ca, { name: 'old' }), ctx));
    expect(err.code).toBe('CK_ERR_ACM_ARN_GONE');
    expect(err.permanent).toBe(true);
    expect(err.hint).toContain('delete "acm:us-east-1" under deploy in state/old.json');
    expect(fake.ops()).toEqual(['ImportCertificate']);
  });

  it("builds its own client from the SDK's settings (AWS_ENDPOINT_URL_ACM, env credentials)", async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_ACM', fake.url);
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDENVTEST');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'env-secret');
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    const d = create(config({ region: 'eu-west-1' }), { logger: silentLogger });
    const ctx = memoryContext();
    expect((await d.deploy(await makeIssued(ca), ctx)).ok).toBe(true);
    expect((ctx.state['acm:eu-west-1'] as AcmDeployState).arn).toMatch(/^arn:aws:acm:eu-west-1:/);
    expect(fake.requests.every((r) => r.region === 'eu-west-1')).toBe(true);
  });
});
