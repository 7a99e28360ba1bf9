import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { loadConfig } from './load.js';
import { loadConfigIsolated } from './load-isolated.js';

describe('loadConfigIsolated (the daemon loads its configuration in a worker thread)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ck-cfg-iso-'));

  it('gives the same configuration as loadConfig, environment substitution included', async () => {
    const file = join(dir, 'ok.yml');
    writeFileSync(
      file,
      'acme: { directoryUrl: letsencrypt, email: "${MAIL}" }\nstorage: { path: ./le }\ncertificates:\n  - { name: a, domains: [A.example.com], challenge: { type: http-01, webroot: www } }\n',
    );
    const env = { MAIL: 'ops@example.com' };
    expect(await loadConfigIsolated(file, env)).toEqual(loadConfig(file, env));
  });

  it('rejects with the same ConfigError, field paths included', async () => {
    const file = join(dir, 'bad.yml');
    writeFileSync(
      file,
      'acme: {}\ncertificates:\n  - { name: "a/b", domains: ["exa mple.com"], challenge: { type: http-01, webroot: /w } }\n',
    );
    const err = await loadConfigIsolated(file, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      'certificates[0].name: "a/b" is not a safe file name: use letters, digits, ".", "_" and "-", starting with a letter or digit (no "/" or "..")',
      'certificates[0].domains[0]: "exa mple.com" is not a valid DNS name or IP address',
    ]);
    const missing = await loadConfigIsolated(join(dir, 'nope.yml'), {}).catch((e: unknown) => e);
    expect((missing as ConfigError).describe()).toMatch(
      /cannot read the configuration file \(ENOENT\)[\s\S]*fix: pass --config/,
    );
  });
});
