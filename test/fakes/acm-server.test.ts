import {
  DescribeCertificateCommand,
  ImportCertificateCommand,
  ListCertificatesCommand,
  ListTagsForCertificateCommand,
} from '@aws-sdk/client-acm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeIssued, type TestCa } from './acm-certs.js';
import { acmClientFor } from './acm-context.js';
import { type FakeAcm, startFakeAcm } from './acm-server.js';

let fake: FakeAcm;
let ca: TestCa;
beforeAll(async () => {
  [fake, ca] = await Promise.all([startFakeAcm({ defaultPageSize: 2 }), makeCa()]);
});
afterAll(async () => {
  await fake?.close();
});

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: { name: string; message: string; $metadata: { httpStatusCode?: number; attempts?: number } }) => e,
  );

describe('fake ACM (awsJson1_1, driven by the real @aws-sdk/client-acm)', () => {
  it('parses an import into Serial, NotAfter, KeyAlgorithm, DomainName and SANs', async () => {
    const acm = acmClientFor(fake);
    const cert = await makeIssued(ca, { key: 'rsa-2048', domains: ['api.example.test', 'example.test'] });
    const { CertificateArn } = await acm.send(
      new ImportCertificateCommand({
        Certificate: Buffer.from(cert.certPem),
        PrivateKey: Buffer.from(cert.keyPem),
        CertificateChain: Buffer.from(cert.chainPem),
        Tags: [{ Key: 'team', Value: 'web' }],
      }),
    );
    const d = (await acm.send(new DescribeCertificateCommand({ CertificateArn }))).Certificate!;
    expect(d.Type).toBe('IMPORTED');
    expect(d.KeyAlgorithm).toBe('RSA_2048');
    expect(d.DomainName).toBe('api.example.test');
    expect(d.SubjectAlternativeNames).toEqual(['api.example.test', 'example.test']);
    expect(d.Serial!.replace(/:/g, '').toUpperCase().replace(/^0+/, '')).toBe(cert.serial.replace(/^0+/, ''));
    expect(d.Serial).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2})+$/);
    expect(d.NotAfter).toBeInstanceOf(Date);
    expect(d.NotAfter!.getTime()).toBe(cert.notAfter.getTime());
    expect((await acm.send(new ListTagsForCertificateCommand({ CertificateArn }))).Tags).toEqual([
      { Key: 'team', Value: 'web' },
    ]);
  });

  it('rejects like ACM: tags on re-import, another key algorithm on re-import, leaf+chain in Certificate, unknown ARN', async () => {
    const acm = acmClientFor(fake);
    const ec = await makeIssued(ca);
    const { CertificateArn } = await acm.send(
      new ImportCertificateCommand({
        Certificate: Buffer.from(ec.certPem),
        PrivateKey: Buffer.from(ec.keyPem),
      }),
    );
    const tagged = await errorOf(
      acm.send(
        new ImportCertificateCommand({
          CertificateArn,
          Certificate: Buffer.from(ec.certPem),
          PrivateKey: Buffer.from(ec.keyPem),
          Tags: [{ Key: 'a', Value: 'b' }],
        }),
      ),
    );
    expect(tagged.name).toBe('ValidationException');
    expect(tagged.$metadata.httpStatusCode).toBe(400);
    const rsa = await makeIssued(ca, { key: 'rsa-2048' });
    const changed = await errorOf(
      acm.send(
        new ImportCertificateCommand({
          CertificateArn,
          Certificate: Buffer.from(rsa.certPem),
          PrivateKey: Buffer.from(rsa.keyPem),
        }),
      ),
    );
    expect(changed.message).toMatch(/key algorithm .* does not match/);
    const both = await errorOf(
      acm.send(
        new ImportCertificateCommand({
          Certificate: Buffer.from(ec.fullchainPem),
          PrivateKey: Buffer.from(ec.keyPem),
        }),
      ),
    );
    expect(both.message).toContain('exactly one');
    const missing = await errorOf(
      acm.send(
        new DescribeCertificateCommand({
          CertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/none',
        }),
      ),
    );
    expect(missing.name).toBe('ResourceNotFoundException');
    const badArn = await errorOf(acm.send(new DescribeCertificateCommand({ CertificateArn: 'nope' })));
    expect(badArn.name).toBe('InvalidArnException');
  });

  it('lists only RSA_1024/RSA_2048 unless Includes.keyTypes asks for more, pages with NextToken, per region', async () => {
    fake.certificates.clear();
    fake.seed({ domainName: 'r1.example.test', keyAlgorithm: 'RSA_2048' });
    fake.seed({ domainName: 'r2.example.test', keyAlgorithm: 'RSA_2048' });
    fake.seed({ domainName: 'e1.example.test', keyAlgorithm: 'EC_prime256v1' });
    fake.seed({ domainName: 'e2.example.test', keyAlgorithm: 'EC_secp384r1' });
    fake.seed({ domainName: 'eu.example.test', keyAlgorithm: 'RSA_2048', region: 'eu-west-1' });
    const acm = acmClientFor(fake);
    const plain = await acm.send(new ListCertificatesCommand({}));
    expect(plain.CertificateSummaryList!.map((s) => s.DomainName)).toEqual([
      'r1.example.test',
      'r2.example.test',
    ]);
    expect(plain.NextToken).toBeUndefined();

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await acm.send(
        new ListCertificatesCommand({
          Includes: { keyTypes: ['RSA_2048', 'EC_prime256v1', 'EC_secp384r1'] },
          NextToken: token,
        }),
      );
      seen.push(...page.CertificateSummaryList!.map((s) => s.DomainName!));
      token = page.NextToken;
      pages++;
    } while (token && pages < 10);
    expect(pages).toBe(2);
    expect(seen.sort()).toEqual(['e1.example.test', 'e2.example.test', 'r1.example.test', 'r2.example.test']);
    const eu = await acmClientFor(fake, 'eu-west-1').send(new ListCertificatesCommand({}));
    expect(eu.CertificateSummaryList!.map((s) => s.DomainName)).toEqual(['eu.example.test']);
  });

  it('throttles with a 400 ThrottlingException that the SDK retries', async () => {
    fake.requests.length = 0;
    fake.throttle(1, 'ListCertificates');
    const out = await acmClientFor(fake).send(new ListCertificatesCommand({}));
    expect(out.$metadata.attempts).toBe(2);
    fake.throttle(5, 'ListCertificates');
    const err = await errorOf(acmClientFor(fake, 'us-east-1', 1).send(new ListCertificatesCommand({})));
    expect(err.name).toBe('ThrottlingException');
    expect(err.$metadata.httpStatusCode).toBe(400);
    fake.clearFailures();
  });

  it('checks the wire protocol strictly', async () => {
    const res = await fetch(`${fake.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-amz-target': 'CertificateManager.ListCertificates' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    const unsigned = await fetch(`${fake.url}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'CertificateManager.ListCertificates',
      },
      body: '{}',
    });
    expect(unsigned.status).toBe(403);
    expect(((await unsigned.json()) as { __type: string }).__type).toBe(
      'MissingAuthenticationTokenException',
    );
  });
});
