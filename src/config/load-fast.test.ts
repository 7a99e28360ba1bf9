/**
 * YAML configurations are read by js-yaml when it reads them cleanly into a plain tree, else by the `yaml` package
 * (its messages with line and column, its alias limit). Both readings give the same configuration.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError } from '../errors.js';
import { parseConfig, parseConfigText } from './load.js';

const text = `# every kind of scalar and collection a configuration uses
acme:
  directoryUrl: "https://127.0.0.1:14000/dir"   # quoted
  email: ops@example.test
storage: { path: /var/lib/certkeeper }
renewal:
  renewBeforeFraction: 0.25
  dangerDays: 7
server:
  listen: 127.0.0.1:8080
  token: \${CK_TOKEN}
selfCheck:
  enabled: false
certificates:
  - name: app
    domains: [app.example.test, 'www.app.example.test']
    keyType: rsa-2048
    challenge: &web
      type: http-01
      webroot: /var/www/certbot
    deploy:
      - type: nginx
        signal: { pidFile: /run/nginx.pid }
    bootstrap: no
    preferredChain: >-
      ISRG Root
      X1
  - name: api
    domains:
      - api.example.test
    challenge: { type: http-01, webroot: /srv/www }
    renewBeforeFraction: 1e-1
`;

function issues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('reading YAML', () => {
  it('gives what the yaml package gives, scalars and environment variables included', () => {
    const env = { CK_TOKEN: 'secret-token-value' };
    // `bootstrap: no` is the string "no" in YAML 1.2 for both readers: the schema refuses it the same way
    const plain = text.replace('bootstrap: no', 'bootstrap: false');
    const got = parseConfigText(plain, { env });
    expect(got).toEqual(parseConfig(parse(plain), { env }));
    expect(got.server.token).toBe('secret-token-value');
    expect(got.certificates[0]!.preferredChain).toBe('ISRG Root X1');
    expect(got.certificates[1]!.renewBeforeFraction).toBe(0.1);
    expect(issues(() => parseConfigText(text, { env })).join('\n')).toMatch(/bootstrap/);
  });

  it('a mapping shared through an alias is read by the yaml package, with the same result', () => {
    const shared = text.replace('challenge: { type: http-01, webroot: /srv/www }', 'challenge: *web');
    const got = parseConfigText(shared.replace('bootstrap: no', 'bootstrap: false'), {
      env: { CK_TOKEN: 'another-secret-token' },
    });
    expect(got.certificates[1]!.challenge).toEqual({ type: 'http-01', webroot: '/var/www/certbot' });
  });

  it('a duplicate key and an unquoted wildcard keep their line and column messages', () => {
    const dup =
      'acme: { directoryUrl: "https://127.0.0.1:1/d" }\nstorage: { path: /x }\nstorage: { path: /y }\n';
    expect(issues(() => parseConfigText(dup)).join('\n')).toMatch(/line 3, column 1/);
    const wild = `acme: { directoryUrl: "https://127.0.0.1:1/d" }
storage: { path: /x }
certificates:
  - name: w
    domains: [*.example.test]
    challenge: { type: dns-01, provider: route53 }
`;
    expect(issues(() => parseConfigText(wild)).join('\n')).toMatch(
      /line 5, column \d+.*quote wildcard names/,
    );
  });
});
