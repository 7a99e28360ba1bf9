/**
 * DNS-01 end to end: the pipeline (renew) orders from Pebble; the Route53 solver uses the real
 * @aws-sdk/client-route-53, pointed through AWS_ENDPOINT_URL_ROUTE_53 (the SDK's own setting) at the fake
 * Route53, which publishes INSYNC TXT sets to pebble-challtestsrv, the DNS Pebble resolves through. The
 * authoritative check asks that DNS too (`nameservers`). Everything stays on 127.0.0.1, names under dns01.test.
 */
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AcmeRequestEvent } from '../src/acme/events.js';
import { acmeEvents } from '../src/acme/events.js';
import { queryTxt, resolveNameServers } from '../src/challenges/dns-propagation.js';
import { destroySharedRoute53Clients } from '../src/challenges/route53/client.js';
import { parseConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { certInfo, keyMatchesCert } from '../src/crypto/pem.js';
import { renew } from '../src/renew.js';
import { type FakeRoute53, startFakeRoute53 } from './fakes/route53-server.js';
import { type PebbleHandle, pollUntil, startPebble, verifyChain } from './harness/index.js';

const AWS_ENV = {
  AWS_ENDPOINT_URL_ROUTE_53: '',
  AWS_ACCESS_KEY_ID: 'AKIDE2EFAKE',
  AWS_SECRET_ACCESS_KEY: 'e2e-fake-secret',
  AWS_REGION: 'us-east-1',
  // Never let the credential chain try the instance metadata address.
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_PROFILE: '',
  AWS_SESSION_TOKEN: '',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
};
const savedEnv: Record<string, string | undefined> = {};

let pebble: PebbleHandle;
let fake: FakeRoute53;
let work: string;
const ZONE = 'ZDNS01TEST';

function config(certificates: ConfigInput['certificates'], storage: string) {
  return parseConfig(
    {
      acme: {
        directoryUrl: pebble.directoryUrl,
        caBundle: pebble.caBundlePath,
        email: 'ops@certkeeper.test',
      },
      storage: { path: storage },
      selfCheck: { resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
      certificates,
    },
    { env: {} },
  );
}

async function txtAt(name: string): Promise<string[]> {
  const [server] = await resolveNameServers([pebble.dnsServer]);
  const res = await queryTxt(server!, name);
  if ('error' in res) throw new Error(`DNS query for ${name} failed: ${res.error}`);
  return res.values;
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-dns01-'));
  pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '0' } });
  fake = await startFakeRoute53({
    zones: [
      { id: ZONE, name: 'dns01.test' },
      { id: 'ZDNS01PRIV', name: 'dns01.test', private: true },
    ],
    challtestsrv: pebble.challtestsrvUrl,
    // PENDING at the first GetChange, INSYNC at the second; the timer (for cleanup changes nobody polls) is
    // long enough never to race the first poll on a slow machine.
    insyncAfterGetChanges: 1,
    insyncAfterMs: 10_000,
  });
  for (const [k, v] of Object.entries({ ...AWS_ENV, AWS_ENDPOINT_URL_ROUTE_53: fake.url })) {
    savedEnv[k] = process.env[k];
    if (v === '') delete process.env[k];
    else process.env[k] = v;
  }
});

afterAll(async () => {
  destroySharedRoute53Clients();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await fake?.close();
  await pebble?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('DNS-01 through Route53 against Pebble', () => {
  it('issues a wildcard + apex certificate with one ChangeBatch and one INSYNC wait, then cleans up', async () => {
    await fake.seedTxt(ZONE, '_acme-challenge.dns01.test', ['placed-by-someone-else']);
    const cfg = config(
      [
        {
          name: 'wild',
          domains: ['dns01.test', '*.dns01.test'],
          challenge: {
            type: 'dns-01',
            provider: 'route53',
            nameservers: [pebble.dnsServer],
            propagationTimeoutSeconds: 30,
          },
        },
      ],
      join(work, 'le-wild'),
    );
    const since = fake.calls.length;
    const report = await renew(cfg);
    expect(report.results[0]?.error).toBeUndefined();
    expect(report.results[0]).toMatchObject({ name: 'wild', status: 'issued', version: 1 });

    const live = join(cfg.storage.path, 'live', 'wild');
    const [cert, fullchain, privkey] = await Promise.all(
      ['cert', 'fullchain', 'privkey'].map((f) => fs.readFile(join(live, `${f}.pem`), 'utf8')),
    );
    expect(verifyChain(fullchain!, await pebble.rootPem())).toBe(true);
    expect(keyMatchesCert(privkey!, cert!)).toBe(true);
    expect(certInfo(cert!).subjectAltNames.sort()).toEqual(['*.dns01.test', 'dns01.test']);

    const calls = fake.calls.slice(since);
    expect(calls.every((c) => c.status === 200)).toBe(true);
    const batches = calls.filter((c) => c.action === 'ChangeResourceRecordSets');
    // One batch to present both values at the shared name, one to remove exactly them.
    expect(batches).toHaveLength(2);
    expect(batches[0]!.changes).toHaveLength(1);
    expect(batches[0]!.changes![0]).toMatchObject({ action: 'UPSERT', name: '_acme-challenge.dns01.test.' });
    expect(batches[0]!.changes![0]!.values).toHaveLength(3);
    expect(batches[0]!.changes![0]!.values[0]).toBe('"placed-by-someone-else"');
    // INSYNC wait: PENDING once, then INSYNC.
    expect(calls.filter((c) => c.action === 'GetChange')).toHaveLength(2);

    // Cleanup left the other value, in Route53 and, once synced, in DNS.
    expect(fake.txt(ZONE, '_acme-challenge.dns01.test')).toEqual(['"placed-by-someone-else"']);
    await fake.settleAll();
    expect(await txtAt('_acme-challenge.dns01.test')).toEqual(['placed-by-someone-else']);
  });

  it('waits until the record is visible in DNS, past INSYNC, before asking the CA to validate', async () => {
    // Route53 says INSYNC but DNS lags: the CA must not be told to look before the record is there.
    fake.holdPublishing(true);
    let released = false;
    const challengePosts: ('before' | 'after')[] = [];
    const onRequest = (e: AcmeRequestEvent) => {
      if (e.endpoint === 'challenge') challengePosts.push(released ? 'after' : 'before');
    };
    acmeEvents.on('request', onRequest);
    try {
      const cfg = config(
        [
          {
            name: 'lagging',
            domains: ['lagging.dns01.test'],
            challenge: {
              type: 'dns-01',
              provider: 'route53',
              nameservers: [pebble.dnsServer],
              propagationTimeoutSeconds: 60,
            },
          },
        ],
        join(work, 'le-lagging'),
      );
      const since = fake.calls.length;
      const run = renew(cfg);
      const insync = await pollUntil(async () => fake.count('GetChange', since) >= 2, {
        attempts: 300,
        intervalMs: 100,
      });
      expect(insync).toBe(true);
      // Several propagation polls go by with the change INSYNC and nothing in DNS.
      await new Promise((r) => setTimeout(r, 2500));
      released = true;
      fake.holdPublishing(false);
      const report = await run;
      expect(report.results[0]?.error).toBeUndefined();
      expect(report.results[0]).toMatchObject({ name: 'lagging', status: 'issued' });
      expect(challengePosts).not.toContain('before');
      expect(challengePosts).toContain('after');
    } finally {
      acmeEvents.off('request', onRequest);
      fake.holdPublishing(false);
    }
  });

  it('cleans up the records after a failed order', async () => {
    // Route53 accepts the change, but nothing reaches the DNS the CA asks: the CA rejects the challenge.
    fake.holdPublishing(true);
    try {
      const cfg = config(
        [
          {
            name: 'broken',
            domains: ['broken.dns01.test'],
            challenge: {
              type: 'dns-01',
              provider: 'route53',
              checkAuthoritative: false,
              propagationTimeoutSeconds: 10,
            },
          },
        ],
        join(work, 'le-broken'),
      );
      const report = await renew(cfg);
      expect(report.ok).toBe(false);
      expect(report.results[0]).toMatchObject({ name: 'broken', status: 'failed' });
      expect(report.results[0]?.error?.domain).toBe('broken.dns01.test');
      const name = '_acme-challenge.broken.dns01.test.';
      const written = fake.calls.filter(
        (c) => c.action === 'ChangeResourceRecordSets' && c.changes?.some((x) => x.name === name),
      );
      expect(written.map((c) => c.changes![0]!.action)).toEqual(['UPSERT', 'DELETE']);
      expect(fake.txt(ZONE, name)).toBeUndefined();
    } finally {
      fake.holdPublishing(false);
    }
  });

  it('fails with the zones it saw when no zone covers a domain, writing nothing', async () => {
    const since = fake.calls.length;
    const cfg = config(
      [
        {
          name: 'nozone',
          domains: ['www.elsewhere.test'],
          challenge: { type: 'dns-01', provider: 'route53', propagationTimeoutSeconds: 10 },
        },
      ],
      join(work, 'le-nozone'),
    );
    const report = await renew(cfg);
    expect(report.results[0]?.status).toBe('failed');
    expect(report.results[0]?.error).toMatchObject({
      kind: 'challenge',
      code: 'CK_ERR_DNS_ZONE_NOT_FOUND',
      domain: 'www.elsewhere.test',
    });
    expect(report.results[0]?.error?.message).toContain('zones seen: dns01.test');
    expect(fake.count('ChangeResourceRecordSets', since)).toBe(0);
  });
});

describe('DNS-01 through Route53: denied', () => {
  it('fails naming the IAM action and zone when ChangeResourceRecordSets is denied', async () => {
    fake.deny('ChangeResourceRecordSets', ZONE);
    try {
      const cfg = config(
        [
          {
            name: 'denied',
            domains: ['denied.dns01.test'],
            challenge: { type: 'dns-01', provider: 'route53', propagationTimeoutSeconds: 10 },
          },
        ],
        join(work, 'le-denied'),
      );
      const report = await renew(cfg);
      expect(report.results[0]?.status).toBe('failed');
      expect(report.results[0]?.error).toMatchObject({
        kind: 'aws',
        code: 'CK_ERR_AWS_ACCESS_DENIED',
        cert: 'denied',
        domain: 'denied.dns01.test',
        permanent: true,
      });
      expect(report.results[0]?.error?.message).toContain(
        `route53:ChangeResourceRecordSets on hostedzone/${ZONE}`,
      );
      expect(JSON.stringify(report)).not.toContain(AWS_ENV.AWS_SECRET_ACCESS_KEY);
    } finally {
      fake.allowAll();
    }
  });
});

describe('DNS-01 through the exec provider against Pebble', () => {
  it('issues a wildcard + apex certificate with a user program that publishes the records', async () => {
    const hook = resolve(import.meta.dirname, 'fixtures/exec-dns-challtestsrv.mjs');
    const cfg = config(
      [
        {
          name: 'viaexec',
          domains: ['exec.dns01.test', '*.exec.dns01.test'],
          challenge: {
            type: 'dns-01',
            provider: 'exec',
            command: [process.execPath, hook, pebble.challtestsrvUrl],
            timeoutSeconds: 20,
            checkAuthoritative: true,
            nameservers: [pebble.dnsServer],
            propagationTimeoutSeconds: 20,
          },
        },
      ],
      join(work, 'le-exec'),
    );
    const report = await renew(cfg);
    expect(report.results[0]?.error).toBeUndefined();
    expect(report.results[0]).toMatchObject({ name: 'viaexec', status: 'issued' });
    const fullchain = await fs.readFile(join(cfg.storage.path, 'live', 'viaexec', 'fullchain.pem'), 'utf8');
    expect(verifyChain(fullchain, await pebble.rootPem())).toBe(true);
    expect(certInfo(fullchain).subjectAltNames.sort()).toEqual(['*.exec.dns01.test', 'exec.dns01.test']);
    expect(await txtAt('_acme-challenge.exec.dns01.test')).toEqual([]);
  });

  it('waits until the record a lagging program publishes is visible before asking the CA to validate', async () => {
    const hook = resolve(import.meta.dirname, 'fixtures/exec-dns-lagging.mjs');
    const marker = join(work, 'lagging-published');
    const challengePosts: ('before' | 'after')[] = [];
    const onRequest = (e: AcmeRequestEvent) => {
      if (e.endpoint === 'challenge') challengePosts.push(existsSync(marker) ? 'after' : 'before');
    };
    acmeEvents.on('request', onRequest);
    try {
      const cfg = config(
        [
          {
            name: 'execlag',
            domains: ['execlag.dns01.test'],
            challenge: {
              type: 'dns-01',
              provider: 'exec',
              command: [process.execPath, hook, pebble.challtestsrvUrl, marker],
              timeoutSeconds: 20,
              checkAuthoritative: true,
              nameservers: [pebble.dnsServer],
              propagationTimeoutSeconds: 30,
            },
          },
        ],
        join(work, 'le-execlag'),
      );
      const report = await renew(cfg);
      expect(report.results[0]?.error).toBeUndefined();
      expect(report.results[0]).toMatchObject({ name: 'execlag', status: 'issued' });
      expect(challengePosts).not.toContain('before');
      expect(challengePosts).toContain('after');
    } finally {
      acmeEvents.off('request', onRequest);
    }
  });
});
