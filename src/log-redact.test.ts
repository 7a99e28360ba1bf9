import { describe, expect, it } from 'vitest';
import { redactText } from './log.js';

describe('redactText', () => {
  it.each([
    ['curl: (22) https://api.dns.example/zones?api_token=abc123secret failed', 'abc123secret'],
    ['Authorization: Bearer eyJhbGciOi.payload.sig', 'eyJhbGciOi'],
    ['export CF_API_KEY=0123456789abcdef', '0123456789abcdef'],
    ['password: "hunter2"', 'hunter2'],
    ['using AKIAIOSFODNN7EXAMPLE for route53', 'AKIAIOSFODNN7EXAMPLE'],
    [
      'key material 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 here',
      '9f86d081884c7d659a2f',
    ],
  ])('masks the secret in %j', (text, secret) => {
    const out = redactText(text);
    expect(out).not.toContain(secret);
    expect(out).toContain('[redacted]');
  });

  it('keeps what helps: messages, host names and paths', () => {
    const text =
      'error: zone not found for example.com at /usr/local/lib/certkeeper-hooks/providers/dns-provider.sh';
    expect(redactText(text)).toBe(text);
  });
});
