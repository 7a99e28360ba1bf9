import { describe, expect, it } from 'vitest';
import { toAcmeError } from '../acme/errors.js';
import { CertkeeperError } from '../errors.js';
import { silentLogger } from '../log.js';
import { orderReplacing } from './acme-issuer.js';

describe('orderReplacing', () => {
  it('orders again without "replaces" when the CA says alreadyReplaced, once', async () => {
    const seen: (string | undefined)[] = [];
    const already = toAcmeError(
      { acmeProblem: { type: 'urn:ietf:params:acme:error:alreadyReplaced', detail: 'replaced' } },
      { action: 'creating the order', cert: 'web' },
    );
    const r = await orderReplacing(
      async (replaces) => {
        seen.push(replaces);
        if (replaces) throw already;
        return 'issued';
      },
      'AAA.BBB',
      'web',
      silentLogger,
    );
    expect(r).toBe('issued');
    expect(seen).toEqual(['AAA.BBB', undefined]);
  });

  it('passes other errors through, and never retries an order that named nothing', async () => {
    const other = new CertkeeperError('acme', 'rate limited', { code: 'CK_ERR_ACME_RATE_LIMITED' });
    let n = 0;
    await expect(
      orderReplacing(
        async () => {
          n++;
          throw other;
        },
        'AAA.BBB',
        'web',
        silentLogger,
      ),
    ).rejects.toBe(other);
    expect(n).toBe(1);
  });
});
