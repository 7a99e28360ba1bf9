import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { canonicalIp, identifierOf } from './ip.js';
import { parseConfig } from './load.js';
import type { ConfigInput } from './schema.js';

const webroot = { type: 'http-01' as const, webroot: '/var/www' };
const dns = { type: 'dns-01' as const, provider: 'exec' as const, command: ['/bin/true'] };

function parse(acme: ConfigInput['acme'], certificates: ConfigInput['certificates']) {
  return parseConfig({ acme, certificates }, { env: {} });
}
function problems(acme: ConfigInput['acme'], certificates: ConfigInput['certificates']): string[] {
  try {
    parse(acme, certificates);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}
const names = (n: number) => Array.from({ length: n }, (_, i) => `n${i}.example.com`);
const pebble = { directoryUrl: 'https://127.0.0.1:14000/dir' };

describe('profiles in the configuration', () => {
  it('acme.profile is every certificate’s default; certificates[].profile overrides it', () => {
    const cfg = parse({ ...pebble, profile: 'tlsserver' }, [
      { name: 'a', domains: ['a.example.com'], challenge: webroot },
      { name: 'b', domains: ['b.example.com'], challenge: webroot, profile: 'classic' },
    ]);
    expect(cfg.acme.profile).toBe('tlsserver');
    expect(cfg.certificates.map((c) => c.profile)).toEqual(['tlsserver', 'classic']);
    expect(
      parse(pebble, [{ name: 'c', domains: ['c.example.com'], challenge: webroot }]).certificates[0]?.profile,
    ).toBeUndefined();
  });

  it('refuses a profile name that is not a plain token', () => {
    expect(problems({ ...pebble, profile: 'tls server' }, [])[0]).toMatch(
      /^acme\.profile: expected a profile name/,
    );
  });

  it('checks the name limit of a known profile: 25 for tlsserver/shortlived, 100 for classic', () => {
    expect(() =>
      parse({ ...pebble, profile: 'tlsserver' }, [{ name: 'a', domains: names(25), challenge: webroot }]),
    ).not.toThrow();
    expect(
      problems({ ...pebble, profile: 'tlsserver' }, [{ name: 'a', domains: names(26), challenge: webroot }]),
    ).toEqual([
      'certificates[0].domains: 26 names, but the tlsserver profile (acme.profile) allows at most 25: split the certificate',
    ]);
    expect(
      problems(pebble, [{ name: 'a', domains: names(26), challenge: webroot, profile: 'shortlived' }])[0],
    ).toMatch(/the shortlived profile \(certificates\[0\]\.profile\) allows at most 25/);
    expect(() =>
      parse({ ...pebble, profile: 'classic' }, [{ name: 'a', domains: names(100), challenge: webroot }]),
    ).not.toThrow();
    expect(
      problems({ ...pebble, profile: 'classic' }, [
        { name: 'a', domains: names(101), challenge: webroot },
      ])[0],
    ).toMatch(/101 names, but the classic profile .* at most 100/);
    // Let's Encrypt without a profile orders under classic; another CA without a profile: no limit known here
    expect(
      problems({ directoryUrl: 'letsencrypt' }, [{ name: 'a', domains: names(101), challenge: webroot }])[0],
    ).toMatch(/the classic profile \(the default profile\) allows at most 100/);
    expect(() => parse(pebble, [{ name: 'a', domains: names(101), challenge: webroot }])).not.toThrow();
    // an unknown (CA-specific) profile has no limit known at config time
    expect(() =>
      parse({ ...pebble, profile: 'custom' }, [{ name: 'a', domains: names(101), challenge: webroot }]),
    ).not.toThrow();
  });
});

describe('IP addresses in domains', () => {
  it('accepts IPv4 and IPv6 (kept in canonical form) with http-01 and no profile or shortlived', () => {
    const cfg = parse(pebble, [
      { name: 'ip', domains: ['127.0.0.1', '2001:DB8:0:0:0:0:0:1', 'host.example.com'], challenge: webroot },
    ]);
    expect(cfg.certificates[0]?.domains).toEqual(['127.0.0.1', '2001:db8::1', 'host.example.com']);
    expect(() =>
      parse({ directoryUrl: 'letsencrypt' }, [
        { name: 'ip', domains: ['192.0.2.7'], challenge: webroot, profile: 'shortlived' },
      ]),
    ).not.toThrow();
  });

  it('refuses them with dns-01, as wildcards, and under a profile that does not allow them', () => {
    expect(problems(pebble, [{ name: 'ip', domains: ['192.0.2.7'], challenge: dns }])).toEqual([
      'certificates[0].domains: IP address 192.0.2.7 cannot be validated by dns-01 (CAs validate IP addresses over http-01 only): use an http-01 challenge for this certificate, or move the address to a certificate of its own',
    ]);
    expect(problems(pebble, [{ name: 'ip', domains: ['*.192.0.2.7'], challenge: dns }])).toContain(
      'certificates[0].domains[0]: "*.192.0.2.7": a wildcard cannot cover IP addresses',
    );
    expect(
      problems({ ...pebble, profile: 'tlsserver' }, [{ name: 'ip', domains: ['::1'], challenge: webroot }]),
    ).toEqual([
      "certificates[0].domains: IP address ::1 is not allowed by the tlsserver profile (acme.profile): set certificates[0].profile: shortlived (the only Let's Encrypt profile for IP addresses)",
    ]);
    // Let's Encrypt's default profile (classic) takes no IP addresses
    expect(
      problems({ directoryUrl: 'letsencrypt' }, [
        { name: 'ip', domains: ['192.0.2.7'], challenge: webroot },
      ])[0],
    ).toMatch(/not allowed by the classic profile \(the default profile\)/);
    expect(problems(pebble, [{ name: 'x', domains: ['300.1.2.3.4:80'], challenge: webroot }])[0]).toMatch(
      /is not a valid DNS name or IP address/,
    );
  });

  it('one spelling for order identifiers', () => {
    expect(canonicalIp('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(canonicalIp('2001:DB8::A')).toBe('2001:db8::a');
    expect(identifierOf('127.0.0.1')).toEqual({ type: 'ip', value: '127.0.0.1' });
    expect(identifierOf('0:0::1')).toEqual({ type: 'ip', value: '::1' });
    expect(identifierOf('a.example.com')).toEqual({ type: 'dns', value: 'a.example.com' });
  });
});
