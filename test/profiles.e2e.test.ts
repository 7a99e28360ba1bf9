/**
 * ACME profiles end to end: Debian's Pebble 2.4 has none, so a small local proxy (test/fakes/acme-profile-proxy.ts)
 * adds Let's Encrypt's `meta.profiles` to its directory and checks and records the `profile` of every newOrder —
 * refusing an unknown one itself (invalidProfile), so Pebble never sees it. The proxy forwards the signed newOrder
 * unchanged (it cannot re-sign a JWS); Pebble 2.4 ignores the extra field (see the proxy's header comment).
 * What is asserted: the profile certkeeper sends, that it is kept in state and a change re-issues, that an unknown
 * profile or a CA without profiles stops before any newOrder, what preflight reports, and that a DNS-01
 * propagation wait stops at the authorization expiry the CA gives, saying so.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { profileChecks } from '../src/cli/preflight.js';
import { collectStatus } from '../src/cli/status.js';
import { parseConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { renew } from '../src/renew.js';
import { CertStore } from '../src/store/store.js';
import { LETS_ENCRYPT_PROFILES, type ProfileProxy, startProfileProxy } from './fakes/acme-profile-proxy.js';
import {
  type NginxHandle,
  type PebbleHandle,
  simpleRequest,
  startNginx,
  startPebble,
} from './harness/index.js';

const HOOK = resolve(import.meta.dirname, 'fixtures/exec-dns-hook.sh');
let pebble: PebbleHandle;
let nginx: NginxHandle;
let proxy: ProfileProxy;
let work: string;
let webroot: string;

function config(
  acme: Partial<ConfigInput['acme']>,
  certificates: ConfigInput['certificates'],
  storage: string,
) {
  return parseConfig(
    {
      acme: { directoryUrl: proxy.directoryUrl, caBundle: pebble.caBundlePath, ...acme },
      storage: { path: storage },
      selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 },
      certificates,
    },
    { env: {} },
  );
}
const site = (over: Partial<NonNullable<ConfigInput['certificates']>[number]> = {}) => ({
  name: 'site',
  domains: ['profiles.certkeeper.test'],
  challenge: { type: 'http-01' as const, webroot },
  ...over,
});

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-profiles-'));
  webroot = join(work, 'www');
  await fs.mkdir(webroot);
  nginx = await startNginx({ webroot });
  pebble = await startPebble({ httpPort: nginx.httpPort });
  proxy = await startProfileProxy({
    pebble,
    profiles: { ...LETS_ENCRYPT_PROFILES, quickauthz: 'authorizations expire within seconds (test)' },
    authorizationLifetimeMs: { quickauthz: 4000 },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('ACME profiles through a profile-aware directory', () => {
  const storage = () => join(work, 'le');

  it('sends acme.profile in newOrder, keeps it in state, and re-issues when the profile changes', async () => {
    const before = proxy.newOrders.length;
    const cfg = config({ profile: 'tlsserver' }, [site()], storage());
    const first = await renew(cfg);
    expect(first.results[0]?.error).toBeUndefined();
    expect(first.results[0]).toMatchObject({ status: 'issued' });
    const sent = proxy.newOrders.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      profile: 'tlsserver',
      rejected: false,
      identifiers: [{ type: 'dns', value: 'profiles.certkeeper.test' }],
    });
    const store = new CertStore(cfg.storage.path);
    expect((await store.readState('site'))?.profile).toBe('tlsserver');

    // unchanged: nothing to do
    expect((await renew(cfg)).results[0]).toMatchObject({ status: 'skipped' });
    expect(proxy.newOrders.length).toBe(before + 1);

    // certificates[].profile overrides acme.profile; the change makes the certificate due
    const changed = config({ profile: 'tlsserver' }, [site({ profile: 'shortlived' })], storage());
    const second = await renew(changed);
    expect(second.results[0]).toMatchObject({
      status: 'renewed',
      reason: 'profile changed (tlsserver → shortlived)',
    });
    expect(proxy.newOrders.at(-1)).toMatchObject({ profile: 'shortlived', rejected: false });
    expect((await store.readState('site'))?.profile).toBe('shortlived');
    // status (and the API, which shares its rows) shows the profile and the lifetime
    const row = (await collectStatus(changed)).find((r) => r.name === 'site');
    expect(row).toMatchObject({ profile: 'shortlived', lifetimeSeconds: expect.any(Number) });
    expect(row!.lifetimeSeconds).toBeGreaterThan(86_400);
  });

  it('an unknown profile fails before any newOrder, naming what the CA offers', async () => {
    const before = proxy.newOrders.length;
    const cfg = config({}, [site({ name: 'typo', profile: 'tls-server' })], join(work, 'le-typo'));
    const report = await renew(cfg);
    const r = report.results[0]!;
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'CK_ERR_PROFILE', cert: 'typo', permanent: true });
    expect(r.reason).toBe(
      `profile: the CA at ${proxy.directoryUrl} does not offer the profile "tls-server"; it offers: classic, quickauthz, shortlived, tlsserver`,
    );
    // it never reached the CA (nor even the proxy standing in front of it)
    expect(proxy.newOrders.length).toBe(before);
  });

  it('a CA without profiles plus a configured profile is an error too, not silently ignored', async () => {
    proxy.setProfiles(null);
    try {
      const before = proxy.newOrders.length;
      const cfg = config({ profile: 'tlsserver' }, [site({ name: 'noprof' })], join(work, 'le-noprof'));
      const r = (await renew(cfg)).results[0]!;
      expect(r.error).toMatchObject({ code: 'CK_ERR_PROFILE' });
      expect(r.reason).toMatch(/"tlsserver" is configured, but the CA at .* offers no profiles/);
      expect(proxy.newOrders.length).toBe(before);
      // the same CA without a profile configured: ordered as before
      const plain = config({}, [site({ name: 'noprof' })], join(work, 'le-noprof'));
      expect((await renew(plain)).results[0]).toMatchObject({ status: 'issued' });
      expect(proxy.newOrders.at(-1)).toMatchObject({ profile: undefined, rejected: false });
    } finally {
      proxy.setProfiles({
        ...LETS_ENCRYPT_PROFILES,
        quickauthz: 'authorizations expire within seconds (test)',
      });
    }
  });

  it('check-config --preflight checks every configured profile against the directory', async () => {
    const cfg = config(
      { profile: 'tlsserver' },
      [
        site({ name: 'a' }),
        site({ name: 'b', profile: 'shortlived' }),
        site({ name: 'c', profile: 'sixday' }),
      ],
      join(work, 'le-pre'),
    );
    const dir = await simpleRequest(proxy.directoryUrl, {
      ca: await fs.readFile(pebble.caBundlePath, 'utf8'),
    });
    const checks = profileChecks(cfg, JSON.parse(dir.body));
    expect(checks).toEqual([
      {
        what: 'ACME profile "tlsserver" (a) is offered by the CA: https://letsencrypt.org/docs/profiles#tlsserver',
        ok: true,
      },
      {
        what: 'ACME profile "shortlived" (b) is offered by the CA: https://letsencrypt.org/docs/profiles#shortlived',
        ok: true,
      },
      {
        what: expect.stringMatching(
          /^ACME profile "sixday" \(c\) is offered by the CA \(.*does not offer the profile "sixday"/,
        ),
        ok: false,
        fix: 'use one of: classic, quickauthz, shortlived, tlsserver',
      },
    ]);
  });

  it('a DNS-01 propagation wait stops at the authorization expiry the CA gives, and says which wait ran out', async () => {
    const log = join(work, 'hook.log');
    // The hook "succeeds" but publishes nothing, so the TXT record never shows on the DNS server Pebble uses.
    const cfg = config(
      {},
      [
        {
          name: 'deadline',
          domains: ['deadline.dns01.test'],
          profile: 'quickauthz',
          challenge: {
            type: 'dns-01',
            provider: 'exec',
            command: [HOOK, log, 'ok'],
            checkAuthoritative: true,
            nameservers: [pebble.dnsServer],
            propagationTimeoutSeconds: 600,
          },
        },
      ],
      join(work, 'le-deadline'),
    );
    const r = (await renew(cfg)).results[0]!;
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'CK_ERR_DNS_PROPAGATION', domain: 'deadline.dns01.test' });
    expect(r.reason).toMatch(
      /^TXT record _acme-challenge\.deadline\.dns01\.test not visible on nameserver 127\.0\.0\.1:\d+ after \d+s, the DNS propagation wait stopped at the order's deadline: the CA's authorization expires at \d{4}-\d\d-\d\dT/,
    );
    expect(String(r.error?.hint)).toMatch(/authorization runs out/);
    // the hook was asked to clean up after the failure
    expect(await fs.readFile(log, 'utf8')).toMatch(/\|cleanup\|deadline\.dns01\.test\|/);
  });
});
