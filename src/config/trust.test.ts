import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { parseConfig } from './load.js';

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, { env: {} });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  return [];
}

describe('configuration: what may reach the CA and the API', () => {
  it.each([
    ['http://acme.example.com/directory'],
    ['http://10.0.0.5:14000/dir'],
    ['http://127.0.0.1.nip.io/dir'],
  ])('refuses the plain-http directory %s with the fix', (url) => {
    const out = problems({ acme: { directoryUrl: url } });
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^acme\.directoryUrl: plain http:\/\/ .*use the CA’s https:\/\/ directory URL/);
    expect(problems({ acme: { directoryUrl: 'letsencrypt', stagingDirectoryUrl: url } })[0]).toMatch(
      /^acme\.stagingDirectoryUrl: plain http:\/\//,
    );
  });

  it.each([
    ['http://127.0.0.1:14000/dir'],
    ['http://[::1]:14000/dir'],
    ['http://localhost:4001/directory'],
    ['https://acme.example.com/directory'],
  ])('accepts %s', (url) => {
    expect(problems({ acme: { directoryUrl: url } })).toEqual([]);
  });

  it('refuses a server.token with spaces, which no bearer header could carry', () => {
    const out = problems({ acme: {}, server: { token: 'correct horse battery staple' } });
    expect(out[0]).toMatch(/^server\.token: the token has spaces/);
    expect(problems({ acme: {}, server: { token: 'a'.repeat(32) } })).toEqual([]);
  });
});
