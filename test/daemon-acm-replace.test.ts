/**
 * acmAudit.replace in the daemon's auditor: the audit's email-validation and pending-validation findings are
 * replaced one at a time, with an alert at each step to a real local receiver. The real SDK clients reach the
 * fakes through AWS_ENDPOINT_URL_<SERVICE>; the served-certificate probe is off (the names do not resolve here).
 */
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { AcmAuditor } from '../src/daemon/acm-audit.js';
import { REPLACES_TAG } from '../src/deploy/acm/replace.js';
import { ReplaceStateStore } from '../src/deploy/acm/replace-state.js';
import { silentLogger } from '../src/log.js';
import { AlertDispatcher } from '../src/notify/index.js';
import { CertStore } from '../src/store/store.js';
import { TEST_CREDENTIALS } from './fakes/acm-context.js';
import { type FakeAcm, startFakeAcm } from './fakes/acm-server.js';
import { type FakeCloudFront, startFakeCloudFront } from './fakes/cloudfront-server.js';
import { type FakeElbv2, startFakeElbv2 } from './fakes/elbv2-server.js';
import { type FakeRoute53, startFakeRoute53 } from './fakes/route53-server.js';

const DAY = 86_400_000;
let acm: FakeAcm;
let r53: FakeRoute53;
let cf: FakeCloudFront;
let elb: FakeElbv2;
let work: string;
let receiver: Server;
let receiverUrl: string;
const received: Record<string, unknown>[] = [];

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-daemon-replace-'));
  r53 = await startFakeRoute53({ zones: [{ id: 'Z0DAEMONTEST', name: 'example.test' }] });
  acm = await startFakeAcm({ cnameLookup: (name) => r53.lookup(name, 'CNAME')?.[0] });
  cf = await startFakeCloudFront({ acm });
  elb = await startFakeElbv2({ acm });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push(JSON.parse(Buffer.concat(chunks).toString()));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
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
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
  await Promise.all([acm?.close(), r53?.close(), cf?.close(), elb?.close()]);
  await fs.rm(work, { recursive: true, force: true });
});

function auditor(replace: boolean) {
  const storage = join(work, `storage-${replace}`);
  const config = parseConfig(
    {
      acme: { directoryUrl: 'http://127.0.0.1:9/directory' },
      storage: { path: storage },
      acmAudit: { regions: ['us-east-1'], replace },
      notify: [{ type: 'webhook', url: `${receiverUrl}/hook`, events: ['audit'] }],
    },
    { env: {} },
  );
  const alerts = new AlertDispatcher(config.notify, {
    logger: silentLogger,
    retryDelaysMs: [0],
    sleep: async () => {},
  });
  const a = new AcmAuditor({
    audit: config.acmAudit!,
    config,
    store: new CertStore(storage),
    alerts,
    logger: silentLogger,
    now: () => new Date(),
    timers: { setTimeout: () => ({}), clearTimeout: () => {} },
    replaceDeps: {
      probe: false,
      timing: { pollMs: 10, maxPollMs: 40, issueTimeoutMs: 5000, confirmTimeoutMs: 5000 },
    },
  });
  return { a, alerts, storage };
}

describe('acmAudit.replace in the daemon', () => {
  it('replaces e-mail-validation and pending-validation findings one at a time, alerting at each step', async () => {
    const mail = acm.seed({
      domainName: 'mail.example.test',
      type: 'AMAZON_ISSUED',
      validationMethod: 'EMAIL',
      notAfter: new Date(Date.now() + 100 * DAY),
    });
    const dist = cf.seed({ id: 'EDAEMON1', aliases: ['mail.example.test'], acmCertificateArn: mail.arn });
    const stuck = acm.seed({
      domainName: 'stuck.example.test',
      type: 'AMAZON_ISSUED',
      status: 'PENDING_VALIDATION',
      validationMethod: 'EMAIL',
      createdAt: new Date(Date.now() - 2 * DAY),
    });
    const { a, alerts, storage } = auditor(true);
    await a.run();
    await a.replacementsIdle();
    await alerts.flush();

    const newOf = (old: string) =>
      [...acm.certificates.values()].find((c) =>
        c.tags.some((t) => t.Key === REPLACES_TAG && t.Value === old),
      );
    expect(newOf(mail.arn)?.status).toBe('ISSUED');
    expect(newOf(stuck.arn)?.status).toBe('ISSUED');
    expect(acm.certificates.get(mail.arn)!.inUseBy).toEqual([]);
    expect(newOf(mail.arn)!.inUseBy).toEqual([dist]);
    expect(a.replaced).toBe(2);

    // One at a time: the second request comes after the last call about the first replacement (its confirm).
    const reqs = acm.requests.map((r, i) => ({ ...r, i })).filter((r) => r.op === 'RequestCertificate');
    expect(reqs).toHaveLength(2);
    const first = newOf(String(reqs[0]!.body.DomainName) === 'mail.example.test' ? mail.arn : stuck.arn)!.arn;
    const lastAboutFirst = acm.requests.map((r) => r.body.CertificateArn).lastIndexOf(first);
    expect(reqs[1]!.i).toBeGreaterThan(lastAboutFirst);
    const mailAlerts = received.filter((b) => (b.audit as { arn: string } | undefined)?.arn === mail.arn);
    expect(mailAlerts[0]).toMatchObject({
      code: 'ACM_AUDIT_EMAIL_VALIDATION',
      hint: 'certkeeper replaces it now (acmAudit.replace: true); alerts follow at each step',
    });
    expect(mailAlerts.slice(1).map((b) => b.code)).toEqual([
      'ACM_REPLACE_REQUESTED',
      'ACM_REPLACE_RECORDS_WRITTEN',
      'ACM_REPLACE_ISSUED',
      'ACM_REPLACE_SWAPPED',
      'ACM_REPLACE_CONFIRMED',
      'ACM_REPLACE_DONE',
    ]);
    // The daemon never deletes the old one.
    expect(acm.certificates.has(mail.arn)).toBe(true);
    expect((await ReplaceStateStore.forStorage(storage).read(mail.arn))?.step).toBe('done');

    // The next audit still sees the old certificate (e-mail-validated, not in use) but does not replace it again.
    const requests = acm.requests.filter((r) => r.op === 'RequestCertificate').length;
    await a.run();
    await a.replacementsIdle();
    expect(acm.requests.filter((r) => r.op === 'RequestCertificate').length).toBe(requests);
    await a.stop();
    await alerts.close();
  });

  it('off by default: nothing is requested, and the critical finding alerts with the command', async () => {
    received.length = 0;
    const used = acm.seed({
      domainName: 'manual.example.test',
      type: 'AMAZON_ISSUED',
      validationMethod: 'EMAIL',
      notAfter: new Date(Date.now() + 100 * DAY),
    });
    cf.seed({ id: 'EDAEMON2', aliases: ['manual.example.test'], acmCertificateArn: used.arn });
    const before = acm.mutations().length;
    const { a, alerts } = auditor(false);
    await a.run();
    await a.replacementsIdle();
    await alerts.flush();
    expect(acm.mutations().length).toBe(before);
    const alert = received.find((b) => (b.audit as { arn: string }).arn === used.arn)!;
    expect(alert.code).toBe('ACM_AUDIT_EMAIL_VALIDATION');
    expect(alert.hint).toContain(`certkeeper acm replace ${used.arn} --yes`);
    await a.stop();
    await alerts.close();
  });

  it('a replacement that cannot be planned (no Route53 zone) alerts with the fix and changes nothing', async () => {
    received.length = 0;
    const lost = acm.seed({
      domainName: 'shop.elsewhere.test',
      type: 'AMAZON_ISSUED',
      validationMethod: 'EMAIL',
      notAfter: new Date(Date.now() + 100 * DAY),
    });
    const { a, alerts } = auditor(true);
    await a.run();
    await a.replacementsIdle();
    await alerts.flush();
    const failed = received.find(
      (b) => b.code === 'ACM_REPLACE_FAILED' && (b.audit as { arn: string }).arn === lost.arn,
    )!;
    expect(String(failed.message)).toContain('no Route53 hosted zone covers shop.elsewhere.test');
    expect(String(failed.message)).toContain('nothing was changed');
    expect(String(failed.hint)).toContain('create a public hosted zone for shop.elsewhere.test');
    expect(
      acm.requests.some((r) => r.op === 'RequestCertificate' && r.body.DomainName === lost.domainName),
    ).toBe(false);
    expect(a.replaceFailures).toBe(1);
    await a.stop();
    await alerts.close();
  });
});
