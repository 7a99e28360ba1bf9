/**
 * `certkeeper acm replace` end to end: the real AWS SDK v3 clients (ACM, Route53, CloudFront, ELBv2), built from
 * their own settings (AWS_ENDPOINT_URL_<SERVICE>, env credentials), against the local wire-protocol fakes. The
 * served certificate is checked over TLS on a loopback server that presents what the swapped resources serve.
 */

import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, createServer, type Server } from 'node:tls';
import { CloudFrontClient, GetDistributionConfigCommand } from '@aws-sdk/client-cloudfront';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AcmCliDeps, acmCommand } from '../src/cli/acm.js';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import { idempotencyTokenFor, REPLACES_TAG } from '../src/deploy/acm/replace.js';
import { ReplaceStateStore } from '../src/deploy/acm/replace-state.js';
import { TEST_CREDENTIALS } from './fakes/acm-context.js';
import { type FakeAcm, startFakeAcm } from './fakes/acm-server.js';
import { type FakeCloudFront, startFakeCloudFront } from './fakes/cloudfront-server.js';
import { type FakeElbv2, startFakeElbv2 } from './fakes/elbv2-server.js';
import { type FakeRoute53, startFakeRoute53 } from './fakes/route53-server.js';

const ZONE = 'Z0EXAMPLETEST';
const APIGW = 'arn:aws:apigateway:us-east-1::/domainnames/api.example.test';
const TIMING = {
  pollMs: 10,
  maxPollMs: 40,
  recordsTimeoutMs: 5000,
  insyncTimeoutMs: 5000,
  issueTimeoutMs: 5000,
  confirmTimeoutMs: 5000,
  probeTimeoutMs: 2000,
};

let acm: FakeAcm;
let r53: FakeRoute53;
let cf: FakeCloudFront;
let elb: FakeElbv2;
let work: string;
let configFile: string;
let storage: string;
let tlsServer: Server;
let probeAddress: string;
let oldSerial: string;
let newSerial: string;
let otherArn: string;
/** While set, ACM's view of DNS misses the CNAMEs (an undelegated zone). */
let dnsBroken = false;

const acmSerial = (pem: string) =>
  new X509Certificate(pem).serialNumber.toLowerCase().match(/../g)!.join(':');

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-acm-replace-'));
  storage = join(work, 'storage');
  r53 = await startFakeRoute53({ zones: [{ id: ZONE, name: 'example.test' }] });
  const oldTls = await createSelfSigned({ commonName: 'old', altNames: ['old.example.test'], days: 30 });
  const newTls = await createSelfSigned({ commonName: 'new', altNames: ['new.example.test'], days: 30 });
  oldSerial = acmSerial(oldTls.certPem);
  newSerial = acmSerial(newTls.certPem);
  acm = await startFakeAcm({
    cnameLookup: (name) => (dnsBroken ? undefined : r53.lookup(name, 'CNAME')?.[0]),
    recordsAfterDescribes: 1,
    failureFor: (c) => (c.domainName.startsWith('caa.') ? 'CAA_ERROR' : undefined),
    onIssued: (c) => {
      c.serial = newSerial;
    },
  });
  cf = await startFakeCloudFront({ acm });
  elb = await startFakeElbv2({ acm });
  otherArn = acm.seed({ domainName: 'other.example.test', status: 'ISSUED' }).arn;
  // What the swapped resources serve: the replacement once one that replaces a certificate for this name is in use.
  const contexts = {
    old: createSecureContext({ cert: oldTls.certPem, key: oldTls.keyPem }),
    new: createSecureContext({ cert: newTls.certPem, key: newTls.keyPem }),
  };
  tlsServer = createServer({
    SNICallback: (servername, cb) => {
      const swapped = [...acm.certificates.values()].some(
        (c) =>
          c.subjectAlternativeNames.includes(servername) &&
          c.tags.some((t) => t.Key === REPLACES_TAG) &&
          c.inUseBy.length > 0,
      );
      cb(null, swapped ? contexts.new : contexts.old);
    },
  });
  tlsServer.on('secureConnection', (s) => s.end());
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  probeAddress = `127.0.0.1:${(tlsServer.address() as AddressInfo).port}`;
  configFile = join(work, 'certkeeper.yml');
  await fs.writeFile(
    configFile,
    `acme:\n  directoryUrl: https://127.0.0.1:14000/dir\nstorage:\n  path: ${storage}\nacmAudit:\n  regions: [us-east-1]\n`,
  );
  vi.stubEnv('AWS_ENDPOINT_URL_ACM', acm.url);
  vi.stubEnv('AWS_ENDPOINT_URL_ROUTE_53', r53.url);
  vi.stubEnv('AWS_ENDPOINT_URL_CLOUDFRONT', cf.url);
  vi.stubEnv('AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2', elb.url);
  vi.stubEnv('AWS_ACCESS_KEY_ID', TEST_CREDENTIALS.accessKeyId);
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', TEST_CREDENTIALS.secretAccessKey);
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
  vi.stubEnv('AWS_MAX_ATTEMPTS', '1');
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await new Promise((r) => tlsServer?.close(r));
  await Promise.all([acm?.close(), r53?.close(), cf?.close(), elb?.close()]);
  await fs.rm(work, { recursive: true, force: true });
});

let seq = 0;
/** An e-mail-validated certificate used by a CloudFront distribution and an ALB (default and SNI). */
function scenario(
  opts: {
    domain?: string;
    cloudfront?: boolean;
    alb?: boolean;
    extraUsers?: string[];
    noCtLog?: boolean;
  } = {},
) {
  seq++;
  const domain = opts.domain ?? `shop${seq}.example.test`;
  const old = acm.seed({
    domainName: domain,
    subjectAlternativeNames: [domain, `www.${domain}`],
    type: 'AMAZON_ISSUED',
    status: 'ISSUED',
    validationMethod: 'EMAIL',
    keyAlgorithm: 'RSA_2048',
    serial: oldSerial,
    notAfter: new Date(Date.now() + 20 * 86_400_000),
    tags: [{ Key: 'team', Value: 'web' }],
    ...(opts.noCtLog && { transparencyLogging: 'DISABLED' as const }),
  });
  const distId = `E${seq}TESTDIST`;
  const dist =
    opts.cloudfront === false
      ? undefined
      : cf.seed({ id: distId, aliases: [domain], acmCertificateArn: old.arn });
  const lb =
    opts.alb === false
      ? undefined
      : elb.seedLoadBalancer(`web${seq}`, [
          { port: 443, defaultCertificate: old.arn },
          { port: 8443, defaultCertificate: otherArn, sniCertificates: [old.arn] },
          { port: 80, protocol: 'HTTP' },
        ]);
  for (const u of opts.extraUsers ?? []) old.inUseBy.push(u);
  return { old, domain, distId, dist, lb };
}

function mutationCounts() {
  return {
    acm: acm.mutations().length,
    route53: r53.count('ChangeResourceRecordSets'),
    cloudfront: cf.mutations().length,
    elbv2: elb.mutations().length,
  };
}

async function run(args: string[], deps: Partial<AcmCliDeps> = {}) {
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
    replaceTiming: TIMING,
    env: { ...process.env },
    ...deps,
  });
  cmd.exitOverride();
  await cmd.parseAsync(['replace', '--config', configFile, ...args], { from: 'user' });
  return { stdout, stderr, code };
}

const requestsFor = (oldArn: string) =>
  acm.requests.filter(
    (r) =>
      r.op === 'RequestCertificate' &&
      (r.body.Tags as { Key: string; Value: string }[]).some(
        (t) => t.Key === REPLACES_TAG && t.Value === oldArn,
      ),
  );

const cfClient = () =>
  new CloudFrontClient({
    region: 'us-east-1',
    endpoint: cf.url,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });

describe('certkeeper acm replace', () => {
  it('replaces an e-mail-validated certificate: CloudFront, ALB default and ALB SNI swapped in one run', async () => {
    const s = scenario({ extraUsers: [APIGW], noCtLog: true });
    const client = cfClient();
    const before = (await client.send(new GetDistributionConfigCommand({ Id: s.distId })))
      .DistributionConfig!;
    const r53Before = r53.calls.length;

    const r = await run([s.old.arn, '--yes', '--delete-old', '--probe-address', probeAddress]);
    expect(r.stderr).toBe('');
    // API Gateway is left for a human, and keeps the old certificate in use: exit 1, old kept.
    expect(r.code).toBe(1);

    const reqs = requestsFor(s.old.arn);
    expect(reqs).toHaveLength(1);
    expect(reqs[0]!.body).toMatchObject({
      DomainName: s.domain,
      SubjectAlternativeNames: [s.domain, `www.${s.domain}`],
      ValidationMethod: 'DNS',
      KeyAlgorithm: 'RSA_2048',
      IdempotencyToken: idempotencyTokenFor(s.old.arn),
      // The old certificate opted out of certificate-transparency logging: so does the replacement.
      Options: { CertificateTransparencyLoggingPreference: 'DISABLED' },
    });
    expect(reqs[0]!.body.Tags).toEqual([
      { Key: 'team', Value: 'web' },
      { Key: REPLACES_TAG, Value: s.old.arn },
    ]);
    const newArn = [...acm.certificates.values()].find((c) => c.tags.some((t) => t.Value === s.old.arn))!.arn;
    expect(acm.certificates.get(newArn)!.status).toBe('ISSUED');

    // One ChangeBatch for the zone, both CNAMEs UPSERTed, and INSYNC awaited.
    const changes = r53.calls.slice(r53Before).filter((c) => c.action === 'ChangeResourceRecordSets');
    expect(changes).toHaveLength(1);
    expect(changes[0]!.changes!.map((c) => [c.action, c.type])).toEqual([
      ['UPSERT', 'CNAME'],
      ['UPSERT', 'CNAME'],
    ]);
    expect(r53.calls.slice(r53Before).some((c) => c.action === 'GetChange')).toBe(true);

    // CloudFront: only the certificate changed, sent with IfMatch.
    const after = (await client.send(new GetDistributionConfigCommand({ Id: s.distId }))).DistributionConfig!;
    expect(after.ViewerCertificate!.ACMCertificateArn).toBe(newArn);
    expect(after).toEqual({
      ...before,
      ViewerCertificate: { ...before.ViewerCertificate, ACMCertificateArn: newArn, Certificate: newArn },
    });
    expect(
      cf
        .mutations()
        .filter((c) => c.path.includes(s.distId))
        .every((c) => c.ifMatch),
    ).toBe(true);
    client.destroy();

    // ALB: default certificate through ModifyListener; SNI added then the old removed; HTTP untouched.
    const [l443, l8443] = elb.listeners(s.lb!);
    expect(l443!.defaultCertificate).toBe(newArn);
    expect(l8443!.defaultCertificate).toBe(otherArn);
    expect(l8443!.sni).toEqual([newArn]);
    const elbOps = elb
      .mutations()
      .filter((c) => c.params.ListenerArn?.startsWith(s.lb!.replace(':loadbalancer/', ':listener/')));
    expect(elbOps.map((c) => c.op)).toEqual([
      'ModifyListener',
      'AddListenerCertificates',
      'RemoveListenerCertificates',
    ]);

    // Confirmed on both sides; the old one still serves API Gateway, so it is kept.
    expect(acm.certificates.get(newArn)!.inUseBy.sort()).toEqual([cf.arnOf(s.distId), s.lb!].sort());
    expect(acm.certificates.get(s.old.arn)!.inUseBy).toEqual([APIGW]);
    expect(acm.ops()).not.toContain('DeleteCertificate');
    expect(r.stdout).toContain(`swap by hand: ${APIGW}`);
    expect(r.stdout).toContain(`kept ${s.old.arn}: still used by ${APIGW}`);
    expect(r.stdout).toContain(`served on ${s.domain} (${probeAddress}): the new certificate`);

    // The progress file: done, 0600.
    const file = ReplaceStateStore.forStorage(storage).path(s.old.arn);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    const state = JSON.parse(await fs.readFile(file, 'utf8'));
    expect(state).toMatchObject({ step: 'done', newArn, manual: [APIGW] });

    // Once API Gateway is moved by hand, --delete-old deletes the old certificate, and nothing else happens.
    acm.setInUse(APIGW, []);
    const m = mutationCounts();
    const again = await run([s.old.arn, '--yes', '--delete-old', '--no-probe']);
    expect(again.code).toBe(0);
    expect(acm.certificates.has(s.old.arn)).toBe(false);
    expect(mutationCounts()).toEqual({ ...m, acm: m.acm + 1 });
    // And after that, the same command only says so.
    const done = await run([s.old.arn, '--yes', '--delete-old', '--no-probe']);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`progress:    done (${newArn}): already replaced, old certificate deleted`);
    expect(mutationCounts()).toEqual({ ...m, acm: m.acm + 1 });
  });

  it("--findings takes the audit's email-validation and pending-validation findings in the regions given", async () => {
    const mail = acm.seed({
      region: 'eu-west-1',
      domainName: 'eu.example.test',
      type: 'AMAZON_ISSUED',
      validationMethod: 'EMAIL',
      notAfter: new Date(Date.now() + 100 * 86_400_000),
    });
    acm.seed({ region: 'eu-west-1', domainName: 'fine.example.test', type: 'AMAZON_ISSUED' });
    const r = await run(['--findings', '--region', 'eu-west-1', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/^replace /gm)).toHaveLength(1);
    expect(r.stdout).toContain(`replace ${mail.arn}`);
    expect(r.stdout).toContain('in use by:   nothing (no swap)');
    const none = await run(['--findings', '--region', 'ap-south-1', '--dry-run']);
    expect(none.stdout).toContain('nothing to replace');
    const both = await run([mail.arn, '--findings']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('ARN... or --findings (not both)');
  });

  it('ISSUED does not come in time: a clear error, progress kept; once DNS answers, the next run finishes', async () => {
    const s = scenario({ alb: false });
    dnsBroken = true;
    const slow = await run([s.old.arn, '--yes', '--no-probe'], {
      replaceTiming: { ...TIMING, issueTimeoutMs: 300 },
    });
    dnsBroken = false;
    expect(slow.code).toBe(2);
    expect(slow.stderr).toMatch(/is still PENDING_VALIDATION 1s after its CNAMEs were written/);
    expect(slow.stderr).toContain(`example.test (${ZONE}) is the zone the registrar delegates to`);
    expect(slow.stderr).toContain('no CAA record forbids amazon.com');
    expect((await ReplaceStateStore.forStorage(storage).read(s.old.arn))?.step).toBe('records-written');
    const r53Writes = r53.count('ChangeResourceRecordSets');
    const again = await run([s.old.arn, '--yes', '--no-probe']);
    expect(again.code).toBe(0);
    expect(requestsFor(s.old.arn)).toHaveLength(1);
    expect(r53.count('ChangeResourceRecordSets')).toBe(r53Writes);
    expect(acm.certificates.get(s.old.arn)!.inUseBy).toEqual([]);
  });

  it('asks before acting: a "no" (or no terminal and no --yes) changes nothing', async () => {
    const s = scenario();
    const m = mutationCounts();
    let asked = '';
    const no = await run([s.old.arn], {
      confirm: async (q) => {
        asked = q;
        return false;
      },
    });
    expect(asked).toBe('Replace 1 certificate(s) as planned above? [y/N] ');
    expect(no.code).toBe(1);
    expect(no.stderr).toContain('nothing was changed');
    const noTty = await run([s.old.arn]);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toContain('stdin is not a terminal');
    expect(noTty.stderr).toContain('fix: look at the plan with --dry-run, then run again with --yes');
    expect(mutationCounts()).toEqual(m);
  });

  it('says what it does and what the exit codes mean in --help', () => {
    const replace = acmCommand().commands.find((c) => c.name() === 'replace')!;
    let help = '';
    replace.configureOutput({ writeOut: (s) => (help += s) });
    replace.outputHelp();
    expect(help).toContain(
      'Exit codes: 0 replaced (or --dry-run), 1 replaced but something is left for a human, 2 error.',
    );
    expect(help).toContain('--delete-old');
    expect(help).toContain('<storage>/acm-replace/');
  });

  it('--dry-run prints the plan and sends no mutating call', async () => {
    const s = scenario();
    const m = mutationCounts();
    const r = await run([s.old.arn, '--dry-run']);
    expect(r.code).toBe(0);
    expect(mutationCounts()).toEqual(m);
    expect(r.stdout).toContain(`replace ${s.old.arn}`);
    expect(r.stdout).toContain(`names:       ${s.domain}, www.${s.domain}`);
    expect(r.stdout).toContain('new:         DNS validation, RSA_2048 (kept: CloudFront accepts RSA 2048)');
    expect(r.stdout).toContain(`${s.domain} → example.test (${ZONE})`);
    expect(r.stdout).toContain(
      'ViewerCertificate.ACMCertificateArn → new certificate (UpdateDistribution with IfMatch)',
    );
    expect(r.stdout).toContain('listener HTTPS :443 default certificate → new certificate (ModifyListener)');
    expect(r.stdout).toContain(
      'listener HTTPS :8443 SNI certificate → add the new one (AddListenerCertificates), then remove the old one (RemoveListenerCertificates)',
    );
    expect(r.stdout).toContain('--dry-run: nothing was changed');
    await expect(fs.stat(ReplaceStateStore.forStorage(storage).path(s.old.arn))).rejects.toThrow();
  });

  it('a crash between request and swap: the second run continues with the same certificate (one request)', async () => {
    const s = scenario();
    const crash = await run([s.old.arn, '--yes', '--no-probe'], {
      onReplaceStep: (e) => {
        if (e.step === 'requested') throw new Error('simulated crash');
      },
    });
    expect(crash.code).toBe(2);
    const state = await ReplaceStateStore.forStorage(storage).read(s.old.arn);
    expect(state?.step).toBe('requested');
    expect(acm.certificates.get(s.old.arn)!.inUseBy.sort()).toEqual([cf.arnOf(s.distId), s.lb!].sort());

    const second = await run([s.old.arn, '--yes', '--no-probe']);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`progress:    requested (${state!.newArn})`);
    expect(requestsFor(s.old.arn)).toHaveLength(1);
    expect(acm.certificates.get(state!.newArn!)!.inUseBy.sort()).toEqual([cf.arnOf(s.distId), s.lb!].sort());
    expect(acm.certificates.get(s.old.arn)!.inUseBy).toEqual([]);

    // A third run swaps nothing twice and requests nothing.
    const m = mutationCounts();
    expect((await run([s.old.arn, '--yes', '--no-probe'])).code).toBe(0);
    expect(mutationCounts()).toEqual(m);
  });

  it('a crash between two swaps: the second run swaps only what is left (no double swap)', async () => {
    const s = scenario();
    let swaps = 0;
    const crash = await run([s.old.arn, '--yes', '--no-probe'], {
      onReplaceStep: (e) => {
        if (e.step === 'swapped' && ++swaps === 1) throw new Error('simulated crash');
      },
    });
    expect(crash.code).toBe(2);
    const state = await ReplaceStateStore.forStorage(storage).read(s.old.arn);
    expect(state?.swapped.map((x) => x.resource)).toEqual([cf.arnOf(s.distId)]);
    const cfUpdates = () => cf.mutations().filter((c) => c.path.includes(s.distId)).length;
    expect(cfUpdates()).toBe(1);
    const second = await run([s.old.arn, '--yes', '--no-probe']);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(cfUpdates()).toBe(1);
    expect(elb.listeners(s.lb!).map((l) => l.defaultCertificate)).toEqual([
      state!.newArn,
      otherArn,
      undefined,
    ]);
    expect(requestsFor(s.old.arn)).toHaveLength(1);
  });

  it('a stale ETag (the distribution changed in between) is re-read and retried, keeping the other change', async () => {
    const s = scenario({ alb: false });
    const r = await run([s.old.arn, '--yes', '--no-probe'], {
      onReplaceStep: (e) => {
        if (e.step === 'issued') cf.editAfterNextRead(s.distId, 'edited by someone else');
      },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const calls = cf.calls.filter((c) => c.path.includes(s.distId) && c.op === 'UpdateDistribution');
    expect(calls.map((c) => c.status)).toEqual([412, 200]);
    const client = cfClient();
    const cfg = (await client.send(new GetDistributionConfigCommand({ Id: s.distId }))).DistributionConfig!;
    client.destroy();
    expect(cfg.Comment).toBe('edited by someone else');
    expect(cfg.ViewerCertificate!.ACMCertificateArn).not.toBe(s.old.arn);
  });

  it('a resource ACM still lists but that uses another certificate (InUseBy lags) is left unchanged', async () => {
    const elsewhere = cf.seed({ id: 'ELAGGING', aliases: ['lag.example.test'], acmCertificateArn: otherArn });
    const s = scenario({ alb: false, extraUsers: [elsewhere] });
    const r = await run([s.old.arn, '--yes', '--no-probe']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`uses ${otherArn}: left unchanged`);
    expect(cf.configXml('ELAGGING')).toContain(`<ACMCertificateArn>${otherArn}</ACMCertificateArn>`);
    expect(cf.mutations().filter((c) => c.path.includes('ELAGGING'))).toEqual([]);
  });

  it('a CAA record that forbids Amazon: FAILED (CAA_ERROR) with the fix, nothing swapped', async () => {
    const s = scenario({ domain: 'caa.example.test', alb: false });
    const r = await run([s.old.arn, '--yes', '--no-probe']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/certificate\/[0-9a-f-]+ is FAILED \(CAA_ERROR\), not ISSUED/);
    expect(r.stderr).toContain(
      'a CAA record on caa.example.test, www.caa.example.test (or a parent) forbids Amazon',
    );
    expect(acm.certificates.get(s.old.arn)!.inUseBy).toEqual([cf.arnOf(s.distId)]);
  });

  it('a name without a Route53 zone: nothing is changed, and the error says so', async () => {
    const s = scenario({ domain: 'shop.elsewhere.test' });
    const m = mutationCounts();
    const r = await run([s.old.arn, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no Route53 hosted zone covers shop.elsewhere.test');
    expect(r.stderr).toContain('nothing was changed');
    expect(r.stderr).toContain("fix: certkeeper writes ACM's validation CNAMEs in Route53");
    expect(mutationCounts()).toEqual(m);
    await expect(fs.stat(ReplaceStateStore.forStorage(storage).path(s.old.arn))).rejects.toThrow();
  });
});
