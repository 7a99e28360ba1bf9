import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { loadConfig, parseConfigText } from './load.js';

const base = `
acme:
  directoryUrl: letsencrypt
  email: ops@example.com
storage:
  path: /etc/letsencrypt
`;

function problems(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfigText(yaml, { env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('accepts the documented example and fills defaults', () => {
    const cfg = parseConfigText(
      `${base}certificates:
  - name: example.com
    domains: [Example.com, www.example.com]
    challenge: { type: http-01, webroot: /var/www/certbot }
`,
    );
    expect(cfg.acme.directoryUrl).toBe('https://acme-v02.api.letsencrypt.org/directory');
    expect(cfg.certificates[0]).toMatchObject({
      name: 'example.com',
      domains: ['example.com', 'www.example.com'],
      keyType: 'ecdsa-p256',
      deploy: [],
    });
    expect(cfg.selfCheck).toMatchObject({ enabled: true, httpPort: 80 });
    expect(cfg.renewal.renewBeforeFraction).toBeUndefined(); // lifetime-based: 1/3, or 1/2 under 10 days
  });

  it('names the field path and the value of an invalid domain', () => {
    const out = problems(`${base}certificates:
  - { name: a, domains: [ok.example.com], challenge: { type: http-01, webroot: /w } }
  - { name: b, domains: ["exa mple.com"], challenge: { type: http-01, webroot: /w } }
`);
    expect(out).toEqual(['certificates[1].domains[0]: "exa mple.com" is not a valid DNS name or IP address']);
  });

  it('rejects unknown keys, naming them', () => {
    const out = problems(`${base}certificates:
  - { name: a, domains: [a.example.com], challenge: { type: http-01, webroot: /w }, keytype: rsa-2048 }
`);
    expect(out[0]).toMatch(/^certificates\[0\]: unknown key "keytype"/);
  });

  it.each([['a/b'], ['..'], [''], ['../etc']])('rejects the unsafe certificate name %j', (name) => {
    const out = problems(`${base}certificates:
  - { name: ${JSON.stringify(name)}, domains: [a.example.com], challenge: { type: http-01, webroot: /w } }
`);
    expect(out[0]).toMatch(/^certificates\[0\]\.name: .* is not a safe file name/);
  });

  it('rejects duplicate names, a wildcard over HTTP-01, bad key types and a bad directory', () => {
    expect(
      problems(`${base}certificates:
  - { name: a, domains: [a.example.com], challenge: { type: http-01, webroot: /w } }
  - { name: a, domains: ["*.example.com"], challenge: { type: http-01, webroot: /w } }
`),
    ).toEqual([
      'certificates[1].name: "a" is already used by certificates[0]; names must be unique',
      'certificates[1].domains[0]: wildcard "*.example.com" needs a dns-01 challenge (HTTP-01 cannot validate wildcards)',
    ]);
    expect(problems(`${base.replace('letsencrypt', 'not a url')}`)[0]).toMatch(
      /^acme\.directoryUrl: expected "letsencrypt"/,
    );
    expect(
      problems(`${base}certificates:
  - { name: a, domains: [a.example.com], keyType: rsa-1024, challenge: { type: http-01, webroot: /w } }
`)[0],
    ).toMatch(/^certificates\[0\]\.keyType: .*ecdsa-p256/);
  });

  it('explains a missing challenge and an unknown dns-01 provider', () => {
    expect(problems(`${base}certificates:\n  - { name: a, domains: [a.example.com] }\n`)[0]).toMatch(
      /^certificates\[0\]\.challenge/,
    );
    expect(
      problems(
        `${base}certificates:\n  - { name: a, domains: [a.example.com], challenge: { type: dns-01, provider: cloudflare } }\n`,
      )[0],
    ).toMatch(/^certificates\[0\]\.challenge\.provider/);
  });

  it('substitutes ${ENV} (with defaults) and names a missing variable', () => {
    const cfg = parseConfigText(
      `acme: { directoryUrl: letsencrypt, eab: { kid: "\${EAB_KID}", hmacKey: "\${EAB_HMAC}" }, email: "\${EMAIL:-ops@example.com}" }\n`,
      { env: { EAB_KID: 'kid-1', EAB_HMAC: 'c2VjcmV0' } },
    );
    expect(cfg.acme.eab).toEqual({ kid: 'kid-1', hmacKey: 'c2VjcmV0' });
    expect(cfg.acme.email).toBe('ops@example.com');
    expect(
      problems(`acme: { directoryUrl: letsencrypt, eab: { kid: a, hmacKey: "\${EAB_HMAC}" } }\n`),
    ).toEqual([
      'acme.eab.hmacKey: environment variable EAB_HMAC is not set (set it, or write ${EAB_HMAC:-default})',
    ]);
  });

  it('reports YAML syntax errors and unreadable files with the fix', () => {
    expect(() => parseConfigText('acme: [unclosed\n')).toThrow(/YAML syntax error/);
    try {
      loadConfig('/nonexistent/certkeeper.yml');
      throw new Error('unreachable');
    } catch (err) {
      expect((err as ConfigError).describe()).toMatch(
        /cannot read the configuration file \(ENOENT\)[\s\S]*fix: pass --config FILE or set CERTKEEPER_CONFIG/,
      );
    }
  });

  it('resolves relative paths against the config file folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ck-cfg-'));
    writeFileSync(
      join(dir, 'c.yml'),
      `acme: { directoryUrl: letsencrypt }\nstorage: { path: ./le }\ncertificates:\n  - { name: a, domains: [a.example.com], challenge: { type: http-01, webroot: www } }\n`,
    );
    const cfg = loadConfig(join(dir, 'c.yml'));
    expect(cfg.storage.path).toBe(join(dir, 'le'));
    expect(cfg.certificates[0]?.challenge).toMatchObject({ webroot: join(dir, 'www') });
  });
});
