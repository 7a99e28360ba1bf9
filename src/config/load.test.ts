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
  it('says to quote an unquoted wildcard in a flow list, with line and column', () => {
    const out = problems(`${base}certificates:
  - name: wild
    domains: [*.example.com, example.com]
    challenge: { type: dns-01, provider: exec, command: [/bin/true] }
`);
    expect(out).toEqual([
      'config: line 9, column 15: *.example.com is read as a YAML alias, not as a wildcard name: quote wildcard names, e.g. domains: ["*.example.com"]',
    ]);
    try {
      parseConfigText(`domains: [*.example.com]\n`);
    } catch (err) {
      expect((err as ConfigError).hint).toMatch(/write wildcard domains in quotes/);
    }
  });

  it('names an alias without an anchor, with line and column', () => {
    expect(problems(`${base}x: *nothing\n`)[0]).toBe(
      'config: line 7, column 4: *nothing is a YAML alias, but no anchor &nothing is defined before it (quote the value if you meant the text "*nothing")',
    );
  });

  it('shows line and column for every YAML syntax error', () => {
    for (const text of [
      'acme: [unclosed\n',
      'acme:\n  a: 1\n a: 2\n',
      'a: 1\na: 2\n',
      'x: "open\n',
      'a: b: c\n',
    ]) {
      const out = problems(text);
      expect(out.length, text).toBeGreaterThan(0);
      for (const p of out) expect(p, text).toMatch(/^config: YAML syntax error: .*line \d+, column \d+/);
    }
  });

  it("loads 101 certificates sharing one anchor (more than the YAML library's default of 100 aliases)", () => {
    let text = `${base}x-webroot: &webroot { type: http-01, webroot: /var/www/certbot }\ncertificates:\n`;
    for (let i = 0; i < 101; i++)
      text += `  - { name: c${i}, domains: [c${i}.example.com], challenge: *webroot }\n`;
    // x-webroot is not a config key: the check names it, which shows the aliases were all expanded first.
    expect(problems(text)).toEqual([
      '(top level): unknown key "x-webroot" (check the spelling against the config reference in the README)',
    ]);
    const ok = text
      .replace(
        'x-webroot: &webroot { type: http-01, webroot: /var/www/certbot }\ncertificates:\n',
        'certificates:\n',
      )
      .replace('challenge: *webroot }', 'challenge: &webroot { type: http-01, webroot: /var/www/certbot } }');
    const cfg = parseConfigText(ok);
    expect(cfg.certificates).toHaveLength(101);
    expect(cfg.certificates[100]!.challenge).toEqual({ type: 'http-01', webroot: '/var/www/certbot' });
  });

  it('refuses an alias bomb as a named configuration error', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [i, l] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
      const prev = String.fromCharCode(97 + i);
      levels.push(`${l}: &${l} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    let err: unknown;
    try {
      parseConfigText(`${levels.join('\n')}\n`, { source: 'bomb.yml' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).kind).toBe('config');
    expect((err as ConfigError).issues[0]).toMatch(
      /^bomb\.yml: the YAML aliases expand to more than 10,000 copies .*alias bomb/,
    );
  });

  it('leaves $${ inside an environment value alone, and still unescapes $${ in the file', () => {
    const cfg = parseConfigText(
      `acme: { directoryUrl: letsencrypt, eab: { kid: "\${KID}", hmacKey: "lit-$\${NOT_A_VAR}" } }\n`,
      { env: { KID: 'pa$${ss}word-${HOME}' } },
    );
    expect(cfg.acme.eab).toEqual({ kid: 'pa$${ss}word-${HOME}', hmacKey: 'lit-${NOT_A_VAR}' });
  });

  it('tells how to turn the self-check off when selfCheck is given a boolean', () => {
    expect(problems(`${base}selfCheck: false\n`)).toEqual([
      'selfCheck: expected a section, not a single value; to turn the self-check off for every certificate write "selfCheck: { enabled: false }" (for one certificate: "challenge: { ..., selfCheck: false }")',
    ]);
  });
});

describe('a configuration file written as JSON', () => {
  const yaml = `${base}certificates:
  - name: example.com
    domains: [example.com, www.example.com]
    challenge: { type: http-01, webroot: ./www }
`;
  const json = JSON.stringify({
    acme: { directoryUrl: 'letsencrypt', email: 'ops@example.com' },
    storage: { path: '/etc/letsencrypt' },
    certificates: [
      {
        name: 'example.com',
        domains: ['example.com', 'www.example.com'],
        challenge: { type: 'http-01', webroot: './www' },
      },
    ],
  });

  it('reads as its YAML spelling does: defaults, ${ENV}, relative paths and errors alike', () => {
    const opts = { env: {}, baseDir: '/srv/ck' };
    expect(parseConfigText(`\n  ${json}\n`, opts)).toEqual(parseConfigText(yaml, opts));
    const bad = JSON.stringify({ ...JSON.parse(json), storage: { path: '${NOPE}' } });
    expect(problems(bad)).toEqual([
      'storage.path: environment variable NOPE is not set (set it, or write ${NOPE:-default})',
    ]);
  });

  it('is YAML when it is not JSON: a flow mapping with bare keys still parses', () => {
    const flow = `{ acme: { directoryUrl: letsencrypt, email: ops@example.com }, storage: { path: /etc/letsencrypt }, certificates: [] }`;
    expect(parseConfigText(flow, { env: {} }).acme.email).toBe('ops@example.com');
  });
});
