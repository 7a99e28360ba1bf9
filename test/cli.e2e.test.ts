import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certInfo } from '../src/crypto/pem.js';
import {
  type NginxHandle,
  type PebbleHandle,
  startNginx,
  startPebble,
  verifyChain,
} from './harness/index.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;
let webroot: string;
let configFile: string;

function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { ...process.env, LOG_FORMAT: 'json', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-cli-'));
  webroot = join(work, 'www');
  await fs.mkdir(webroot);
  nginx = await startNginx({ webroot });
  pebble = await startPebble({ httpPort: nginx.httpPort });
  configFile = join(work, 'certkeeper.yml');
  await fs.writeFile(
    configFile,
    `acme:
  directoryUrl: ${pebble.directoryUrl}
  caBundle: ${pebble.caBundlePath}
  email: ops@certkeeper.test
storage: { path: ./le }
selfCheck: { httpPort: ${nginx.httpPort}, resolvers: ["${pebble.dnsServer}"] }
certificates:
  - name: web
    domains: [web.cli.certkeeper.test]
    challenge: { type: http-01, webroot: ./www }
  - name: broken
    domains: [broken.cli.certkeeper.test]
    challenge: { type: http-01, webroot: ./not-served }
`,
  );
});

afterAll(async () => {
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('certkeeper CLI', () => {
  it('prints help for every command', async () => {
    for (const args of [
      ['--help'],
      ['renew', '--help'],
      ['status', '--help'],
      ['check-config', '--help'],
      ['revoke', '--help'],
      ['run', '--help'],
      ['acm', 'audit', '--help'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: certkeeper/);
    }
  });

  it('check-config explains a bad file with the field path and exits 2', async () => {
    const bad = join(work, 'bad.yml');
    await fs.writeFile(
      bad,
      'acme: {}\ncertificates:\n  - { name: "a/b", domains: ["exa mple.com"], challenge: { type: http-01, webroot: /w } }\n',
    );
    const r = await cli(['--config', bad, 'check-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('certificates[0].name: "a/b" is not a safe file name');
    expect(r.stderr).toContain('certificates[0].domains[0]: "exa mple.com" is not a valid DNS name');
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace without --debug
    const ok = await cli(['check-config'], { CERTKEEPER_CONFIG: configFile });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/valid, 2 certificate\(s\)/);
  });

  it('renew issues the good certificate, names the failed one with its reason, and exits 1', async () => {
    const r = await cli(['--config', configFile, 'renew']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✔ web: issued serial [0-9A-F]+/);
    expect(r.stdout).toMatch(
      /✘ broken \[broken\.cli\.certkeeper\.test\]: self-check failed before asking the CA/,
    );
    expect(r.stdout).toMatch(/fix: make nginx serve/);
    expect(r.stdout).toMatch(/1 issued, 0 renewed, 0 redeployed, 0 dry-run, 0 not due, 1 failed/);
    const fullchain = await fs.readFile(join(work, 'le', 'live', 'web', 'fullchain.pem'), 'utf8');
    expect(verifyChain(fullchain, await pebble.rootPem())).toBe(true);
    // JSON logs on stderr carry the step events, never the key
    const events = r.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event?: string; cert?: string });
    expect(events.some((e) => e.event === 'renew.stored' && e.cert === 'web')).toBe(true);
    expect(r.stderr).not.toContain('PRIVATE KEY');
  });

  it('status shows names, days left and the last result; --json parses', async () => {
    const r = await cli(['--config', configFile, 'status', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('PRIVATE KEY');
    const rows = JSON.parse(r.stdout) as {
      name: string;
      validity: string;
      daysLeft?: number;
      lastAttempt?: { result: string };
    }[];
    const web = rows.find((x) => x.name === 'web')!;
    expect(web).toMatchObject({ validity: 'valid', lastAttempt: { result: 'success' } });
    expect(web.daysLeft).toBeGreaterThan(30);
    expect(rows.find((x) => x.name === 'broken')).toMatchObject({
      validity: 'placeholder',
      lastAttempt: { result: 'failure' },
    });
    const table = await cli(['--config', configFile, 'status']);
    expect(table.stdout).toMatch(/^NAME\s+DOMAINS\s+NOT AFTER\s+DAYS\s+STATE\s+RENEWS AT\s+LAST RESULT/);
    expect(table.stdout).toMatch(
      /^web\s+web\.cli\.certkeeper\.test\s+\S+ \S+\s+\d+\s+valid\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+success/m,
    );
  });

  it('renew --dry-run orders but keeps nothing', async () => {
    const before = await fs.readFile(join(work, 'le', 'live', 'web', 'cert.pem'), 'utf8');
    const stateBefore = await fs.readFile(join(work, 'le', 'state', 'web.json'), 'utf8');
    const r = await cli(['--config', configFile, 'renew', 'web', '--dry-run', '--force']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✔ web: .*dry run: ordered from https:\/\/127\.0\.0\.1:\d+\/dir, nothing kept/);
    expect(await fs.readFile(join(work, 'le', 'live', 'web', 'cert.pem'), 'utf8')).toBe(before);
    expect(await fs.readFile(join(work, 'le', 'state', 'web.json'), 'utf8')).toBe(stateBefore);
    expect(
      (await fs.readdir(join(work, 'le', 'archive', 'web'))).filter((f) => /[1-9]\.pem$/.test(f)),
    ).toHaveLength(5); // one real version: cert, chain, fullchain, privkey, combined (version 0: the placeholder)
  });

  it('check-config --preflight checks storage, webroots and the CA without changing anything', async () => {
    const r = await cli(['--config', configFile, 'check-config', '--preflight']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/✔ storage .*le is writable/);
    expect(r.stdout).toMatch(/✔ webroot of web .*www is writable/);
    expect(r.stdout).toMatch(/✔ ACME directory https:\/\/127\.0\.0\.1:\d+\/dir answers/);
    const unreachable = join(work, 'unreachable.yml');
    await fs.writeFile(
      unreachable,
      (await fs.readFile(configFile, 'utf8')).replace(pebble.directoryUrl, 'https://127.0.0.1:1/dir'),
    );
    const bad = await cli(['--config', unreachable, 'check-config', '--preflight']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(
      /✘ ACME directory https:\/\/127\.0\.0\.1:1\/dir answers[\s\S]*fix: check acme\.directoryUrl/,
    );
  });

  it('renew of an unknown name exits 2 naming it', async () => {
    const r = await cli(['--config', configFile, 'renew', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown certificate name: nope[\s\S]*configured names: web, broken/);
  });

  it('revoke revokes at the CA and the next renew replaces the certificate', async () => {
    const serial = certInfo(await fs.readFile(join(work, 'le', 'live', 'web', 'cert.pem'), 'utf8')).serial;
    const r = await cli(['--config', configFile, 'revoke', 'web', '--reason', 'superseded']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`revoked web serial ${serial}`);
    const again = await cli(['--config', configFile, 'revoke', 'web']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/alreadyRevoked|already revoked/i);
    const renewed = await cli(['--config', configFile, 'renew', 'web']);
    expect(renewed.code).toBe(0);
    expect(renewed.stdout).toMatch(/✔ web: renewed serial/);
    expect(certInfo(await fs.readFile(join(work, 'le', 'live', 'web', 'cert.pem'), 'utf8')).serial).not.toBe(
      serial,
    );
  });
});
