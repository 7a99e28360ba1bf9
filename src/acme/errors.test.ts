import { describe, expect, it } from 'vitest';
import { toAcmeError } from './errors.js';

const problem = (type: string, detail: string, extra: object = {}) =>
  Object.assign(new Error(detail), {
    acmeProblem: { type: `urn:ietf:params:acme:error:${type}`, detail, ...extra },
  });

describe('ACME problem documents become errors that say what to fix', () => {
  it('rateLimited carries Retry-After and a stable code', () => {
    const err = toAcmeError(
      Object.assign(problem('rateLimited', 'too many certificates'), { acmeRetryAfter: '3600' }),
      {
        cert: 'a',
        action: 'creating the order',
      },
    );
    expect(err).toMatchObject({ kind: 'acme', code: 'CK_ERR_ACME_RATE_LIMITED', cert: 'a' });
    expect(err.message).toBe('creating the order failed (rateLimited): too many certificates');
    expect(err.retryAfter!.getTime() - Date.now()).toBeGreaterThan(3590_000);
  });

  it('names the domain from the subproblem and explains unauthorized/dns/connection', () => {
    const err = toAcmeError(
      problem('unauthorized', 'Some identifiers failed', {
        subproblems: [{ type: 'x', identifier: { type: 'dns', value: 'b.example.com' } }],
      }),
      { cert: 'b', action: 'finalizing the order' },
    );
    expect(err.domain).toBe('b.example.com');
    expect(err.hint).toMatch(/control of b\.example\.com/);
    expect(toAcmeError(problem('dns', 'NXDOMAIN'), { domain: 'c.example.com', action: 'x' }).hint).toMatch(
      /resolve c\.example\.com/,
    );
    expect(
      toAcmeError(problem('connection', 'refused'), { domain: 'd.example.com', action: 'x' }).hint,
    ).toMatch(/port 80/);
    expect(toAcmeError(problem('caa', 'CAA forbids'), { action: 'x' }).permanent).toBe(true);
  });

  it('says how to fix an unreachable or untrusted CA', () => {
    expect(
      toAcmeError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), { action: 'x' })
        .hint,
    ).toMatch(/directoryUrl/);
    expect(
      toAcmeError(Object.assign(new Error('self-signed'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), {
        action: 'x',
      }).hint,
    ).toMatch(/caBundle/);
  });
});
