import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { acmCommand } from '../src/cli/acm.js';
import type { Finding } from '../src/deploy/acm/audit.js';
import { CertStore } from '../src/store/store.js';
import { acmClientFor } from './fakes/acm-context.js';
import { type FakeAcm, startFakeAcm } from './fakes/acm-server.js';

let fake: FakeAcm;
let dir: string;
let configFile: string;
let managedArn: string;
let unmanagedArn: string;

beforeAll(async () => {
  fake = await startFakeAcm();
  dir = await mkdtemp(join(tmpdir(), 'ck-acm-cli-'));
  const soon = new Date(Date.now() + 60 * 86_400_000);
  managedArn = fake.seed({
    domainName: 'shop.example.test',
    type: 'IMPORTED',
    keyAlgorithm: 'EC_prime256v1',
    notAfter: soon,
  }).arn;
  unmanagedArn = fake.seed({
    domainName: 'legacy.example.test',
    type: 'IMPORTED',
    keyAlgorithm: 'RSA_2048',
    notAfter: soon,
    inUseBy: ['arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/legacy/1'],
  }).arn;
  configFile = join(dir, 'certkeeper.yml');
  await writeFile(
    configFile,
    `acme:
  directoryUrl: https://127.0.0.1:14000/dir
storage:
  path: ${join(dir, 'storage')}
acmAudit:
  regions: [us-east-1]
certificates:
  - name: shop
    domains: [shop.example.test]
    challenge: { type: http-01, webroot: ${join(dir, 'www')} }
    deploy:
      - { type: acm, region: us-east-1 }
`,
  );
  // What the acm deployer leaves behind after its first import.
  await new CertStore(join(dir, 'storage')).updateState('shop', {
    deploy: { 'acm:us-east-1': { arn: managedArn, keyAlgorithm: 'EC_prime256v1' } },
  });
});
afterAll(async () => {
  await fake?.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[], withClient = true) {
  let stdout = '';
  let stderr = '';
  let code = -1;
  const cmd = acmCommand({
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    setExitCode: (c) => {
      code = c;
    },
    ...(withClient && { clientFor: (region: string) => acmClientFor(fake, region) }),
  });
  cmd.exitOverride();
  await cmd.parseAsync(args, { from: 'user' });
  return { stdout, stderr, code };
}

describe('certkeeper acm audit', () => {
  it('exits 1 with a table naming the unmanaged import and its fix; the ARN in state counts as managed', async () => {
    const r = await run(['audit', '--config', configFile]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^SEVERITY\s+RULE\s+REGION\s+DOMAIN\s+ARN/);
    expect(r.stdout).toContain(`critical  unmanaged-import  us-east-1  legacy.example.test  ${unmanagedArn}`);
    expect(r.stdout).toContain(
      `    fix:     let certkeeper renew it: add deploy: [{ type: acm, region: us-east-1, arn: ${unmanagedArn} }]`,
    );
    expect(r.stdout).not.toContain(managedArn);
    expect(r.stdout).toContain('1 finding(s) in us-east-1: 1 critical, 0 warning(s)');
  });

  it('--json prints the findings; exit 0 and a plain sentence when a region is clean', async () => {
    const j = await run(['audit', '--config', configFile, '--json']);
    const parsed = JSON.parse(j.stdout) as { findings: Finding[]; managedArns: number; regions: string[] };
    expect(parsed.managedArns).toBe(1);
    expect(parsed.findings.map((f) => [f.rule, f.arn])).toEqual([['unmanaged-import', unmanagedArn]]);
    const clean = await run(['audit', '--config', configFile, '--region', 'eu-west-1']);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('no findings in eu-west-1');
  });

  it('exits 2 with the fix on errors: missing config, AWS access denied, bad region', async () => {
    const missing = await run(['audit', '--config', join(dir, 'nope.yml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the configuration file');
    expect(missing.stderr).toContain('fix:');
    fake.failNext('ListCertificates', 1, 'AccessDeniedException', 'not authorized');
    const denied = await run(['audit', '--config', configFile]);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toContain('AccessDeniedException');
    expect(denied.stderr).toContain('acm:ListCertificates');
    const bad = await run(['audit', '--config', configFile, '--region', 'moon-1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"moon-1" is not an AWS region');
  });

  it("uses the SDK's own settings when no client is injected (AWS_ENDPOINT_URL_ACM, env credentials)", async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_ACM', fake.url);
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDENVTEST');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'env-secret');
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    try {
      const r = await run(['audit', '--config', configFile, '--json'], false);
      expect(r.code).toBe(1);
      expect((JSON.parse(r.stdout) as { findings: Finding[] }).findings).toHaveLength(1);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('says what the exit codes mean in --help', () => {
    const audit = acmCommand().commands.find((c) => c.name() === 'audit')!;
    let help = '';
    audit.configureOutput({ writeOut: (s) => (help += s) });
    audit.outputHelp();
    expect(help).toContain('Exit codes: 0 no findings, 1 findings, 2 error');
    expect(help).toContain('--region <region...>');
  });
});
