/**
 * Every branch of the pipeline with in-memory parts: a memory Store/Locker, a fake Issuer, fake deployers and an
 * alert sink that records. No CA, no disk, no network: milliseconds per case.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../test/fakes/memory-store.js';
import { ariCertId } from '../acme/ari-id.js';
import { parseConfig } from '../config/load.js';
import type { ConfigInput } from '../config/schema.js';

type CertificateConfigInput = NonNullable<ConfigInput['certificates']>[number];

import { createTestCA, issueLeaf, type TestCA } from '../crypto/selfsigned.js';
import type { Deployer } from '../deploy/types.js';
import { CertkeeperError } from '../errors.js';
import type { Alert } from '../notify/types.js';
import { type RenewOptions, renew } from './renew.js';
import type { Issued, IssueRequest, Issuer, RenewalWindow } from './types.js';

const DAY = 86_400_000;
let ca: TestCA | undefined;

class FakeIssuer implements Issuer {
  readonly directoryUrl = 'https://ca.test/dir';
  orders: IssueRequest[] = [];
  ariAsked = 0;
  days = 90;
  fail?: CertkeeperError;
  window?: RenewalWindow;
  /** Called while an order runs (e.g. to lose the lock meanwhile). */
  during?: () => void;
  async order(req: IssueRequest): Promise<Issued> {
    this.orders.push(req);
    this.during?.();
    if (this.fail) throw this.fail;
    ca ??= await createTestCA({ commonName: 'pipeline test CA' });
    const { certPem, keyPem } = await issueLeaf(ca, { altNames: req.cert.domains, days: this.days });
    return { fullchainPem: certPem + ca.certPem, keyPem, timings: { total: 1 } };
  }
  async renewalInfo(): Promise<RenewalWindow | undefined> {
    this.ariAsked++;
    return this.window;
  }
}

function setup(cert: Partial<CertificateConfigInput> = {}, deployOk: boolean | 'throw' = true) {
  const config = parseConfig({
    acme: { directoryUrl: 'https://ca.test/dir' },
    storage: { path: '/nonexistent-memory-store' },
    certificates: [
      {
        name: 'web',
        domains: ['web.example.test'],
        challenge: { type: 'http-01', webroot: '/srv/www' },
        ...cert,
      } as CertificateConfigInput,
    ],
  });
  const store = new MemoryStore();
  const issuer = new FakeIssuer();
  const alerts: Alert[] = [];
  const deployed: string[] = [];
  const deployer: Deployer = {
    name: 'fake',
    async deploy(c) {
      deployed.push(c.serial);
      if (deployOk === 'throw') {
        throw new CertkeeperError('verify', 'renewed but not deployed: 127.0.0.1:443 serves serial AA', {
          hint: 'reload nginx',
        });
      }
      return deployOk
        ? { deployer: 'fake', ok: true, detail: 'deployed' }
        : { deployer: 'fake', ok: false, detail: 'reload failed' };
    },
  };
  let clock = new Date();
  const opts = (extra: RenewOptions = {}): RenewOptions => ({
    store,
    issuer: () => issuer,
    deployers: async () => deployer,
    notifier: { notify: (a) => alerts.push(a) },
    now: () => clock,
    ...extra,
  });
  return {
    config,
    store,
    issuer,
    alerts,
    deployed,
    run: (extra?: RenewOptions) => renew(config, opts(extra)),
    setClock: (d: Date) => (clock = d),
    clock: () => clock,
  };
}

const withNginx: Partial<CertificateConfigInput> = {
  deploy: [{ type: 'nginx', signal: { pidFile: '/run/nginx.pid' } }],
};

describe('renew(): the pipeline over injected parts', () => {
  it('missing: writes the placeholder first, then issues and alerts success', async () => {
    const t = setup();
    const report = await t.run();
    expect(report.ok).toBe(true);
    expect(report.results[0]).toMatchObject({ name: 'web', status: 'issued' });
    expect(t.store.saved.map((s) => s.placeholder)).toEqual([true, false]);
    expect((await t.store.current('web'))?.placeholder).toBe(false);
    expect(t.alerts.map((a) => a.event)).toEqual(['success']);
    expect(t.issuer.orders[0]?.replaces).toBeUndefined();
  });

  it('bootstrap: false writes no placeholder', async () => {
    const t = setup({ bootstrap: false });
    await t.run();
    expect(t.store.saved.map((s) => s.placeholder)).toEqual([false]);
  });

  it('a placeholder nobody replaced (CA down at first boot) stays, and is due at once', async () => {
    const t = setup();
    t.issuer.fail = new CertkeeperError('acme', 'cannot reach the CA', { code: 'CK_ERR_ACME' });
    const r1 = await t.run();
    expect(r1.results[0]?.status).toBe('failed');
    expect((await t.store.current('web'))?.placeholder).toBe(true);
    t.issuer.fail = undefined;
    const r2 = await t.run();
    expect(r2.results[0]).toMatchObject({ status: 'issued' });
    expect(t.issuer.orders).toHaveLength(2);
  });

  it('not due: nothing ordered, nothing written', async () => {
    const t = setup();
    await t.run();
    const writes = t.store.stateWrites;
    const r = await t.run({ ari: false });
    expect(r.results[0]).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/days left/) });
    expect(t.issuer.orders).toHaveLength(1);
    expect(t.store.stateWrites).toBe(writes);
  });

  it('dry run: orders, keeps nothing, alerts nothing', async () => {
    const t = setup();
    const r = await t.run({ dryRun: true });
    expect(r.results[0]).toMatchObject({ status: 'dry-run' });
    expect(t.issuer.orders).toHaveLength(1);
    expect(t.store.saved).toEqual([]);
    expect(t.store.stateWrites).toBe(0);
    expect(t.alerts).toEqual([]);
  });

  it('backoff: a scheduled run waits, a human run goes ahead', async () => {
    const t = setup();
    t.issuer.fail = new CertkeeperError('acme', 'CA hiccup', { code: 'CK_ERR_ACME' });
    await t.run();
    const st = await t.store.readState('web');
    expect(st).toMatchObject({ failures: 1, lastAttempt: { result: 'failure', code: 'CK_ERR_ACME' } });
    expect(Date.parse(st!.nextAttemptAfter!) - t.clock().getTime()).toBe(60_000);
    const scheduled = await t.run({ respectBackoff: true });
    expect(scheduled.results[0]).toMatchObject({
      status: 'skipped',
      reason: expect.stringMatching(/next try/),
    });
    expect(t.issuer.orders).toHaveLength(1);
    await t.run();
    expect(t.issuer.orders).toHaveLength(2);
    expect((await t.store.readState('web'))?.failures).toBe(2);
    // second failure: 10 minutes
    const st2 = await t.store.readState('web');
    expect(Date.parse(st2!.nextAttemptAfter!) - t.clock().getTime()).toBe(600_000);
  });

  it('permanent errors wait long (the lifetime cap) and keep their fix line', async () => {
    const t = setup();
    t.issuer.fail = new CertkeeperError('acme', 'CAA forbids this CA', {
      code: 'CK_ERR_ACME_CAA',
      permanent: true,
      hint: 'add the CA to the CAA record',
    });
    await t.run();
    const st = await t.store.readState('web');
    // the live placeholder lives 7 days: the cap is 1/24 of that (7 h), far beyond the 1-minute first step
    const wait = Date.parse(st!.nextAttemptAfter!) - t.clock().getTime();
    expect(wait).toBeGreaterThan(6.9 * 3600_000);
    expect(wait).toBeLessThan(7.1 * 3600_000);
    expect(st?.lastAttempt).toMatchObject({ permanent: true, hint: 'add the CA to the CAA record' });
  });

  it('failure alerts: once, again when the failure changes or a day has passed; success clears it', async () => {
    const t = setup();
    t.issuer.fail = new CertkeeperError('acme', 'CA hiccup', { code: 'CK_ERR_ACME', hint: 'wait' });
    await t.run();
    await t.run();
    expect(t.alerts.filter((a) => a.event === 'failure')).toHaveLength(1);
    expect(t.alerts[0]).toMatchObject({
      event: 'failure',
      code: 'CK_ERR_ACME',
      hint: 'wait',
      certificate: 'web',
    });
    t.issuer.fail = new CertkeeperError('acme', 'rate limited', { code: 'CK_ERR_ACME_RATE_LIMITED' });
    await t.run();
    expect(t.alerts.filter((a) => a.event === 'failure')).toHaveLength(2);
    await t.run();
    expect(t.alerts.filter((a) => a.event === 'failure')).toHaveLength(2);
    t.setClock(new Date(t.clock().getTime() + DAY + 1000));
    await t.run();
    expect(t.alerts.filter((a) => a.event === 'failure')).toHaveLength(3);
    t.issuer.fail = undefined;
    await t.run();
    expect(t.alerts.at(-1)?.event).toBe('success');
    expect((await t.store.readState('web'))?.alerts?.failure).toBeUndefined();
    t.issuer.fail = new CertkeeperError('acme', 'CA hiccup', { code: 'CK_ERR_ACME' });
    await t.run({ force: true });
    expect(t.alerts.at(-1)?.event).toBe('failure');
  });

  it('busy: another process holds the lock — neither success nor failure, nothing written', async () => {
    const t = setup();
    t.store.locker.foreign.set('web', { host: 'elsewhere', pid: 42 });
    const r = await t.run();
    expect(r.ok).toBe(true);
    expect(r.results[0]).toMatchObject({
      status: 'busy',
      reason: expect.stringContaining('pid 42 on elsewhere'),
    });
    expect(t.issuer.orders).toEqual([]);
    expect(t.store.stateWrites).toBe(0);
    expect(t.alerts).toEqual([]);
  });

  it('lock lost during the order: stops before writing anything', async () => {
    const t = setup({ bootstrap: false });
    t.issuer.during = () => t.store.locker.lose('web');
    const r = await t.run();
    expect(r.results[0]).toMatchObject({ status: 'failed', error: { code: 'CK_ERR_LOCK_LOST' } });
    expect(t.store.saved).toEqual([]);
    expect(t.store.stateWrites).toBe(0);
  });

  it("the caller's long-lived signal (the daemon's) keeps nothing of a run, ordered or skipped", async () => {
    const t = setup({ bootstrap: false });
    const daemon = new AbortController();
    await t.run({ signal: daemon.signal });
    for (let i = 0; i < 20; i++) await t.run({ signal: daemon.signal, ari: false });
    expect(t.issuer.orders).toHaveLength(1);
    expect(getEventListeners(daemon.signal, 'abort')).toHaveLength(0);
    // what AbortSignal.any registers with its sources (node's own symbol): one per certificate per run, kept
    const dependants = Object.getOwnPropertySymbols(daemon.signal).find(
      (k) => k.description === 'kDependantSignals',
    );
    expect(
      dependants ? (daemon.signal as unknown as Record<symbol, Set<unknown>>)[dependants]!.size : 0,
    ).toBe(0);
  });

  it("aborting the caller's signal during an order reaches the order", async () => {
    const t = setup({ bootstrap: false });
    const daemon = new AbortController();
    let seen: AbortSignal | undefined;
    t.issuer.during = () => {
      seen = t.issuer.orders[0]!.signal;
      daemon.abort(new Error('shutting down'));
    };
    await t.run({ signal: daemon.signal });
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toEqual(new Error('shutting down'));
    expect(getEventListeners(daemon.signal, 'abort')).toHaveLength(0);
  });

  it('deploy failure: "renewed but not deployed" said once, with the fix; the next run redeploys without ordering', async () => {
    const t = setup(withNginx, 'throw');
    await t.run({ force: true, bootstrap: async () => false });
    const r = await t.run({ force: true });
    expect(r.results[0]?.status).toBe('failed');
    expect(r.results[0]?.deployFailed).toBe(true);
    expect(r.results[0]?.reason).toBe('renewed but not deployed: nginx: 127.0.0.1:443 serves serial AA');
    expect(r.results[0]?.error).toMatchObject({ code: 'CK_ERR_NOT_DEPLOYED', hint: 'reload nginx' });
    const st = await t.store.readState('web');
    expect(st?.lastDeploy).toMatchObject({
      ok: false,
      results: [{ deployer: 'nginx', hint: 'reload nginx' }],
    });
    const orders = t.issuer.orders.length;
    const again = await t.run({ ari: false });
    expect(again.results[0]).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/^stored but not/),
    });
    expect(t.issuer.orders).toHaveLength(orders);
  });

  it('the intent to deploy is written before the switch; a crash after it is deployed by the next run', async () => {
    const t = setup(withNginx);
    await t.run();
    let intentAtSwitch: string | undefined;
    t.store.beforeSwitch = (name) => {
      intentAtSwitch = t.store.states.get(name)?.pendingDeploy?.serial;
    };
    const r = await t.run({ force: true });
    expect(intentAtSwitch).toBe(r.results[0]?.serial);
    expect((await t.store.readState('web'))?.pendingDeploy).toBeUndefined();

    // A crash between the switch and the reload: the state still holds the intent for the live serial.
    const live = (await t.store.current('web'))!;
    await t.store.updateState('web', {
      pendingDeploy: { serial: live.serial, at: new Date().toISOString() },
    });
    const orders = t.issuer.orders.length;
    const deploys = t.deployed.length;
    const next = await t.run({ ari: false });
    expect(next.results[0]).toMatchObject({ status: 'redeployed', serial: live.serial });
    expect(t.issuer.orders).toHaveLength(orders);
    expect(t.deployed.slice(deploys)).toEqual([live.serial]);
    expect((await t.store.readState('web'))?.pendingDeploy).toBeUndefined();
  });

  it('a successful renewal with a deployer rewrites the state three times at most', async () => {
    const t = setup(withNginx);
    await t.run();
    const before = t.store.stateWrites;
    await t.run({ force: true, ari: false });
    expect(t.store.stateWrites - before).toBeLessThanOrEqual(3);
  });

  it('ARI: asks when due, renews inside the window naming the replaced certificate', async () => {
    const t = setup();
    await t.run();
    const live = (await t.store.current('web'))!;
    t.issuer.window = {
      start: new Date(Date.now() - 7200_000),
      end: new Date(Date.now() - 60_000),
      retryAfterMs: 3600_000,
    };
    const r = await t.run();
    expect(t.issuer.ariAsked).toBe(1);
    expect(r.results[0]).toMatchObject({ status: 'renewed', reason: expect.stringMatching(/ARI/) });
    expect(t.issuer.orders.at(-1)?.replaces).toBe(ariCertId(live.certPem));
    // a fresh certificate's window is asked for again at the next run (its state was reset on success)
    t.issuer.window = {
      start: new Date(Date.now() + 30 * DAY),
      end: new Date(Date.now() + 32 * DAY),
      retryAfterMs: 3600_000,
    };
    const r2 = await t.run();
    expect(r2.results[0]?.status).toBe('skipped');
    expect((await t.store.readState('web'))?.ari?.start).toBe(t.issuer.window.start.toISOString());
    // not asked again before its Retry-After
    await t.run();
    expect(t.issuer.ariAsked).toBe(2);
  });

  it('a certificate that could not be stored is stored at the next attempt without a new order', async () => {
    const t = setup({ bootstrap: false });
    t.store.saveError = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
    });
    const r = await t.run();
    expect(r.results[0]).toMatchObject({ status: 'failed', error: { code: 'CK_ERR_STORE_FAILED' } });
    expect(String(r.results[0]?.error?.hint)).toMatch(/free space .*kept in memory/);
    expect((await t.store.readState('web'))?.lastAttempt).toMatchObject({
      result: 'failure',
      hint: expect.stringMatching(/free space/),
    });
    t.store.saveError = undefined;
    const r2 = await t.run();
    expect(r2.results[0]).toMatchObject({ status: 'issued' });
    expect(t.issuer.orders).toHaveLength(1);
  });

  it('too little free space: nothing is ordered, the failure is recorded with its fix', async () => {
    const t = setup({ bootstrap: false });
    t.store.spaceError = new CertkeeperError('store', 'storage.path has only 12 KiB free', {
      code: 'CK_ERR_DISK_FULL',
      hint: 'free space',
    });
    const r = await t.run();
    expect(r.results[0]).toMatchObject({ status: 'failed', error: { code: 'CK_ERR_DISK_FULL' } });
    expect(t.issuer.orders).toEqual([]);
    expect((await t.store.readState('web'))?.lastAttempt).toMatchObject({
      code: 'CK_ERR_DISK_FULL',
      hint: 'free space',
    });
  });

  it('expiring: inside the danger window with the last attempt failed, told once a day', async () => {
    const t = setup({ bootstrap: false });
    t.issuer.days = 10;
    await t.run();
    t.issuer.fail = new CertkeeperError('acme', 'CA down', { code: 'CK_ERR_ACME' });
    // 9 days on: 1 day left of 10, inside the danger window (1/4 of the lifetime for short certificates)
    t.setClock(new Date(Date.now() + 9 * DAY));
    await t.run();
    expect(t.alerts.map((a) => a.event)).toEqual(['success', 'failure', 'expiring']);
    t.setClock(new Date(t.clock().getTime() + 3600_000));
    await t.run();
    expect(t.alerts.filter((a) => a.event === 'expiring')).toHaveLength(1);
  });
});
