/**
 * End to end: Pebble issues over HTTP-01 (harness nginx serves the webroot), the lead's pipeline stores the
 * certificate and runs the `acm` deployer, which reaches the fake ACM through the SDK's own settings
 * (AWS_ENDPOINT_URL_ACM and env credentials), exactly as it would reach AWS.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { runAcmAudit } from '../src/deploy/acm/audit.js';
import type { AcmDeployState } from '../src/deploy/acm/index.js';
import { managedArnsFromStore } from '../src/deploy/acm/managed.js';
import { renew } from '../src/renew.js';
import { CertStore } from '../src/store/store.js';
import { acmClientFor } from './fakes/acm-context.js';
import { type FakeAcm, startFakeAcm } from './fakes/acm-server.js';
import { type NginxHandle, type PebbleHandle, startNginx, startPebble } from './harness/index.js';

let pebble: PebbleHandle;
let nginx: NginxHandle;
let fake: FakeAcm;
let work: string;
let webroot: string;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-acm-e2e-'));
  webroot = join(work, 'www');
  await fs.mkdir(webroot);
  await fs.chmod(work, 0o755);
  fake = await startFakeAcm();
  nginx = await startNginx({ webroot, workerUser: 'nobody nogroup' });
  pebble = await startPebble({ httpPort: nginx.httpPort });
  vi.stubEnv('AWS_ENDPOINT_URL_ACM', fake.url);
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDE2ETEST');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'e2e-secret');
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await pebble?.stop();
  await nginx?.stop();
  await fake?.close();
  await fs.rm(work, { recursive: true, force: true });
});

const config = () =>
  parseConfig({
    acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath, email: 'ops@certkeeper.test' },
    storage: { path: join(work, 'le') },
    selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
    certificates: [
      {
        name: 'cdn',
        domains: ['cdn.certkeeper.test', 'static.certkeeper.test'],
        keyType: 'ecdsa-p256',
        challenge: { type: 'http-01', webroot },
        deploy: [{ type: 'acm', cloudfront: true, tags: { team: 'web' } }],
      },
    ],
  });

describe('Pebble → store → acm deployer → fake ACM', () => {
  it('imports a Pebble certificate, re-imports the renewal into the same ARN, and survives an ACM failure', async () => {
    const cfg = config();
    const store = new CertStore(cfg.storage.path);

    const first = await renew(cfg);
    expect(first.results[0]?.error).toBeUndefined();
    expect(first.results[0]).toMatchObject({ status: 'issued', deployFailed: false });
    const st1 = (await store.readState('cdn'))!.deploy!['acm:us-east-1'] as AcmDeployState;
    const acmCert = fake.certificates.get(st1.arn)!;
    const live1 = (await store.current('cdn'))!;
    expect(acmCert.lastImport!.certificate).toBe(live1.certPem);
    expect(acmCert.lastImport!.chain).toBe(live1.chainPem);
    expect(acmCert.subjectAlternativeNames.sort()).toEqual(['cdn.certkeeper.test', 'static.certkeeper.test']);
    expect(acmCert.tags).toContainEqual({ Key: 'team', Value: 'web' });
    expect(st1).toMatchObject({ keyAlgorithm: 'EC_prime256v1', serial: live1.serial });

    const second = await renew(cfg, { force: true });
    expect(second.results[0]).toMatchObject({ status: 'renewed', deployFailed: false });
    const live2 = (await store.current('cdn'))!;
    expect(live2.serial).not.toBe(live1.serial);
    expect(fake.certificates.size).toBe(1);
    expect(acmCert.lastImport!.certificate).toBe(live2.certPem);
    expect(((await store.readState('cdn'))!.deploy!['acm:us-east-1'] as AcmDeployState).arn).toBe(st1.arn);

    // ACM refuses: the certificate stays stored and live, the result says "renewed but not deployed".
    fake.failNext(
      'ImportCertificate',
      1,
      'AccessDeniedException',
      'User is not authorized to perform: acm:ImportCertificate',
    );
    const third = await renew(cfg, { force: true });
    expect(third.results[0]).toMatchObject({ status: 'failed', deployFailed: true });
    expect(third.results[0]?.reason).toContain('renewed but not deployed');
    expect(third.results[0]?.deploy?.[0]?.detail).toContain('AccessDeniedException');
    expect(third.results[0]?.deploy?.[0]?.detail).toContain('minimal IAM policy');
    const live3 = (await store.current('cdn'))!;
    expect(live3.version).toBe(3);
    expect(acmCert.lastImport!.certificate).toBe(live2.certPem);
    expect((await store.readState('cdn'))!.lastDeploy).toMatchObject({ ok: false });

    // The audit sees the ARN as managed through the state file: no finding for it.
    const findings = await runAcmAudit({
      regions: ['us-east-1'],
      managedArns: await managedArnsFromStore(store, { config: cfg }),
      clientFor: (r) => acmClientFor(fake, r),
    });
    expect(findings).toEqual([]);
  });
});
