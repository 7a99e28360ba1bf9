/**
 * The fakes acm replace runs against behave like the services where it matters, seen through the real SDK clients:
 * ACM's IdempotencyToken and in-use refusal, CloudFront's ETag/IfMatch rules, ELBv2's default-certificate rules.
 */
import { DeleteCertificateCommand, RequestCertificateCommand } from '@aws-sdk/client-acm';
import {
  CloudFrontClient,
  GetDistributionConfigCommand,
  UpdateDistributionCommand,
} from '@aws-sdk/client-cloudfront';
import {
  DescribeListenerCertificatesCommand,
  ElasticLoadBalancingV2Client,
  RemoveListenerCertificatesCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acmClientFor, TEST_CREDENTIALS } from './acm-context.js';
import { type FakeAcm, startFakeAcm } from './acm-server.js';
import { type FakeCloudFront, startFakeCloudFront } from './cloudfront-server.js';
import { type FakeElbv2, startFakeElbv2 } from './elbv2-server.js';

let clock = Date.parse('2026-06-01T00:00:00Z');
let acm: FakeAcm;
let cf: FakeCloudFront;
let elb: FakeElbv2;

beforeAll(async () => {
  acm = await startFakeAcm({ now: () => new Date(clock) });
  cf = await startFakeCloudFront({ acm });
  elb = await startFakeElbv2({ acm });
});
afterAll(async () => {
  await Promise.all([acm?.close(), cf?.close(), elb?.close()]);
});

const nameOf = (e: unknown) => (e as { name?: string }).name;

describe('wire fakes for acm replace', () => {
  it('ACM: the same IdempotencyToken gives the same ARN for an hour; a used certificate cannot be deleted', async () => {
    const c = acmClientFor(acm);
    const req = () =>
      c.send(
        new RequestCertificateCommand({
          DomainName: 'idem.example.test',
          ValidationMethod: 'DNS',
          IdempotencyToken: 'tok1',
        }),
      );
    const a = (await req()).CertificateArn;
    expect((await req()).CertificateArn).toBe(a);
    clock += 3601_000;
    expect((await req()).CertificateArn).not.toBe(a);
    acm.setInUse('arn:aws:cloudfront::123456789012:distribution/EX', [a!]);
    const err = await c.send(new DeleteCertificateCommand({ CertificateArn: a })).catch((e) => e);
    expect(nameOf(err)).toBe('ResourceInUseException');
    acm.setInUse('arn:aws:cloudfront::123456789012:distribution/EX', []);
    await c.send(new DeleteCertificateCommand({ CertificateArn: a }));
    expect(acm.certificates.has(a!)).toBe(false);
    c.destroy();
  });

  it('CloudFront: IfMatch is required, a stale ETag is 412 PreconditionFailed, and P-384 is refused', async () => {
    const old = acm.seed({ domainName: 'cdn.example.test' }).arn;
    const p384 = acm.seed({ domainName: 'cdn.example.test', keyAlgorithm: 'EC_secp384r1' }).arn;
    cf.seed({ id: 'EFAKE1', aliases: ['cdn.example.test'], acmCertificateArn: old });
    const c = new CloudFrontClient({
      region: 'us-east-1',
      endpoint: cf.url,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
    });
    const got = await c.send(new GetDistributionConfigCommand({ Id: 'EFAKE1' }));
    expect(got.ETag).toBe(cf.etag('EFAKE1'));
    const cfg = got.DistributionConfig!;
    const noMatch = await c
      .send(new UpdateDistributionCommand({ Id: 'EFAKE1', DistributionConfig: cfg }))
      .catch((e) => e);
    expect(nameOf(noMatch)).toBe('InvalidIfMatchVersion');
    await c.send(new UpdateDistributionCommand({ Id: 'EFAKE1', IfMatch: got.ETag, DistributionConfig: cfg }));
    const stale = await c
      .send(new UpdateDistributionCommand({ Id: 'EFAKE1', IfMatch: got.ETag, DistributionConfig: cfg }))
      .catch((e) => e);
    expect(nameOf(stale)).toBe('PreconditionFailed');
    expect(stale.$metadata.httpStatusCode).toBe(412);
    const fresh = await c.send(new GetDistributionConfigCommand({ Id: 'EFAKE1' }));
    const bad = await c
      .send(
        new UpdateDistributionCommand({
          Id: 'EFAKE1',
          IfMatch: fresh.ETag,
          DistributionConfig: {
            ...cfg,
            ViewerCertificate: { ...cfg.ViewerCertificate, ACMCertificateArn: p384, Certificate: p384 },
          },
        }),
      )
      .catch((e) => e);
    expect(nameOf(bad)).toBe('InvalidViewerCertificate');
    expect(acm.certificates.get(old)!.inUseBy).toEqual([cf.arnOf('EFAKE1')]);
    c.destroy();
  });

  it('ELBv2: the default certificate is listed with IsDefault and cannot be removed as an SNI one', async () => {
    const def = acm.seed({ domainName: 'lb.example.test' }).arn;
    const sni = acm.seed({ domainName: 'lb2.example.test' }).arn;
    const lb = elb.seedLoadBalancer('fake', [{ port: 443, defaultCertificate: def, sniCertificates: [sni] }]);
    const listener = elb.listeners(lb)[0]!.arn;
    const c = new ElasticLoadBalancingV2Client({
      region: 'us-east-1',
      endpoint: elb.url,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
    });
    const certs = (await c.send(new DescribeListenerCertificatesCommand({ ListenerArn: listener })))
      .Certificates;
    expect(certs).toEqual([
      { CertificateArn: def, IsDefault: true },
      { CertificateArn: sni, IsDefault: false },
    ]);
    const err = await c
      .send(
        new RemoveListenerCertificatesCommand({
          ListenerArn: listener,
          Certificates: [{ CertificateArn: def }],
        }),
      )
      .catch((e) => e);
    expect(nameOf(err)).toBe('OperationNotPermittedException');
    expect(acm.certificates.get(def)!.inUseBy).toEqual([lb]);
    expect(acm.certificates.get(sni)!.inUseBy).toEqual([lb]);
    c.destroy();
  });
});
