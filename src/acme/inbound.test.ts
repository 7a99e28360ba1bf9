import { describe, expect, it } from 'vitest';
import { assertChallengeToken, assertOrderedIdentifier, isValidChallengeToken } from './inbound.js';

const ctx = { cert: 'c', domain: 'a.example.com' };

describe('challenge tokens', () => {
  it.each([['LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0'], ['A'.repeat(22)], ['a-b_c'.repeat(10)]])(
    'accepts the RFC 8555 token %s',
    (t) => expect(assertChallengeToken(t, ctx)).toBe(t),
  );
  it.each([
    ['../../../../etc/passwd'],
    ['..'],
    ['abc/defghijklmnopqrstuvwxyz'],
    ['abc\\defghijklmnopqrstuvwxyz'],
    ['padded=AAAAAAAAAAAAAAAAAAAAAA'],
    ['short'],
    ['A'.repeat(257)],
    ['with space AAAAAAAAAAAAAAAAAAAA'],
    ['nul\u0000AAAAAAAAAAAAAAAAAAAAAA'],
  ])('refuses %j', (t) => {
    expect(isValidChallengeToken(t)).toBe(false);
    expect(() => assertChallengeToken(t, ctx)).toThrow(
      expect.objectContaining({ code: 'CK_ERR_ACME_BAD_TOKEN' }),
    );
  });
  it('refuses non-strings', () => {
    expect(isValidChallengeToken(undefined)).toBe(false);
    expect(isValidChallengeToken(42)).toBe(false);
  });
});

describe('authorization identifiers', () => {
  const names = ['example.com', '*.example.com', 'www.Example.com'];
  it('accepts exactly the configured names, case-insensitively, with the wildcard flag applied', () => {
    expect(assertOrderedIdentifier({ type: 'dns', value: 'EXAMPLE.com' }, false, names, ctx)).toBe(
      'example.com',
    );
    expect(assertOrderedIdentifier({ type: 'dns', value: 'example.com' }, true, names, ctx)).toBe(
      '*.example.com',
    );
    expect(assertOrderedIdentifier({ type: 'dns', value: 'www.example.com' }, false, names, ctx)).toBe(
      'www.example.com',
    );
  });
  it('accepts an IP identifier in another spelling', () => {
    expect(
      assertOrderedIdentifier({ type: 'ip', value: '2001:DB8:0:0:0:0:0:1' }, false, ['2001:db8::1'], ctx),
    ).toBe('2001:db8::1');
  });
  it.each([
    [{ type: 'dns', value: '$(touch /tmp/pwned);a.example.com' }, false],
    [{ type: 'dns', value: 'other.example.com' }, false],
    [{ type: 'dns', value: 'www.example.com' }, true], // *.www.example.com was not ordered
    [{ type: 'dns', value: '*.example.com' }, false], // a wildcard must come as a flag, not in the value
    [{ type: 'email', value: 'example.com' }, false],
    [{ type: 'dns', value: 42 }, false],
    [undefined, false],
  ])('refuses %j (wildcard %s)', (ident, wildcard) => {
    expect(() => assertOrderedIdentifier(ident, wildcard, ['example.com', 'www.example.com'], ctx)).toThrow(
      expect.objectContaining({ code: 'CK_ERR_ACME_FOREIGN_IDENTIFIER', cert: 'c' }),
    );
  });
});
