import { describe, expect, it } from 'vitest';
import { findingsToReplace, idempotencyTokenFor, replacementKey } from './replace.js';
import { ReplaceStateStore, stateIdFor } from './replace-state.js';
import { resourceKind } from './replace-swap.js';

const ARN = 'arn:aws:acm:us-east-1:123456789012:certificate/1f2e3d4c-0000-4000-8000-000000000001';

describe('acm replace: the pure parts', () => {
  it('derives one IdempotencyToken per old ARN, within RequestCertificate limits', () => {
    const t = idempotencyTokenFor(ARN);
    expect(t).toMatch(/^\w{32}$/);
    expect(idempotencyTokenFor(ARN)).toBe(t);
    expect(idempotencyTokenFor(ARN.replace(/1$/, '2'))).not.toBe(t);
  });

  it('keeps the key when CloudFront takes it and ACM can request it, else ECDSA P-256', () => {
    expect(replacementKey('RSA-2048')).toEqual({
      keyAlgorithm: 'RSA_2048',
      reason: 'kept: CloudFront accepts RSA 2048',
    });
    expect(replacementKey('EC_prime256v1').keyAlgorithm).toBe('EC_prime256v1');
    expect(replacementKey('EC_secp384r1')).toEqual({
      keyAlgorithm: 'EC_prime256v1',
      reason: 'CloudFront does not accept ECDSA P-384: ECDSA P-256 instead',
    });
    expect(replacementKey('RSA_4096')).toEqual({
      keyAlgorithm: 'EC_prime256v1',
      reason: 'ACM cannot request RSA 4096: ECDSA P-256 instead',
    });
  });

  it('swaps only CloudFront distributions and ELBv2 load balancers; everything else is for a human', () => {
    expect(resourceKind('arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL')).toBe('cloudfront');
    expect(
      resourceKind(
        'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188',
      ),
    ).toBe('elbv2');
    expect(
      resourceKind(
        'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/tcp/50dc6c495c0c9188',
      ),
    ).toBe('elbv2');
    expect(resourceKind('arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/my-classic')).toBe(
      'other',
    );
    expect(resourceKind('arn:aws:apigateway:us-east-1::/domainnames/api.example.com')).toBe('other');
  });

  it('replaces e-mail-validation and pending-validation findings only, once each', () => {
    expect(
      findingsToReplace([
        { arn: 'a', rule: 'email-validation' },
        { arn: 'b', rule: 'expiring' },
        { arn: 'a', rule: 'expiring' },
        { arn: 'c', rule: 'pending-validation' },
        { arn: 'a', rule: 'email-validation' },
      ]),
    ).toEqual(['a', 'c']);
  });

  it('names progress files from the checked ARN only', () => {
    expect(stateIdFor(ARN)).toBe('us-east-1-1f2e3d4c-0000-4000-8000-000000000001');
    expect(ReplaceStateStore.forStorage('/var/lib/ck').path(ARN)).toBe(
      '/var/lib/ck/acm-replace/us-east-1-1f2e3d4c-0000-4000-8000-000000000001.json',
    );
    expect(() => stateIdFor('arn:aws:acm:us-east-1:123456789012:certificate/../../etc/passwd')).toThrow(
      /is not an ACM certificate ARN/,
    );
  });
});
