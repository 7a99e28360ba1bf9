/**
 * Watching served certificates against a real nginx on loopback: an endpoint whose certificate is close to expiry,
 * one answering for another name, one whose chain does not verify and a closed port alert through the notify
 * dispatcher (a local webhook receiver) and show in the metrics and on the status page; what nginx serves for the
 * daemon's own certificates is compared with the store.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate as X509 } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import type { Daemon } from '../src/daemon/daemon.js';
import { silentLogger } from '../src/log.js';
import { AlertDispatcher } from '../src/notify/index.js';
import { CertStore } from '../src/store/store.js';
import { Watcher } from '../src/watch/watcher.js';
import { type ObserveWorld, samples, startDaemon, startWorld } from './fixtures/observe-daemon.js';
import { freePort, type NginxHandle, startNginx } from './harness/index.js';

let world: ObserveWorld;
let nginx: NginxHandle;
let daemon: Daemon;
let soonNotAfter: Date;
let closedPort: number;
const files: Record<string, string> = {};

beforeAll(async () => {
  world = await startWorld();
  const dir = join(world.work, 'certs');
  await fs.mkdir(dir);
  const make = async (name: string, days: number) => {
    const { certPem, keyPem } = await createSelfSigned({ commonName: name, altNames: [name], days });
    files[`${name}.crt`] = join(dir, `${name}.crt`);
    files[`${name}.key`] = join(dir, `${name}.key`);
    await fs.writeFile(files[`${name}.crt`]!, certPem);
    await fs.writeFile(files[`${name}.key`]!, keyPem, { mode: 0o600 });
    return { certPem, keyPem };
  };
  const soon = await make('soon.watch.test', 2);
  soonNotAfter = new Date(new X509(soon.certPem).validTo);
  // The daemon's own certificate "site" is what nginx serves for site.watch.test (from the store's live folder).
  const storage = join(world.work, 'le-site');
  const store = new CertStore(storage);
  const site = await createSelfSigned({
    commonName: 'site.watch.test',
    altNames: ['site.watch.test'],
    days: 90,
  });
  await store.save('site', {
    domains: ['site.watch.test'],
    keyType: 'ecdsa-p256',
    fullchainPem: site.certPem,
    keyPem: site.keyPem,
  });
  // "stale" is stored fresh, but nginx serves an older certificate for its name.
  const stale = await createSelfSigned({
    commonName: 'stale.watch.test',
    altNames: ['stale.watch.test'],
    days: 90,
  });
  await store.save('stale', {
    domains: ['stale.watch.test'],
    keyType: 'ecdsa-p256',
    fullchainPem: stale.certPem,
    keyPem: stale.keyPem,
  });
  await make('stale.watch.test', 30);
  nginx = await startNginx({
    webroot: join(world.work, 'www'),
    tlsServers: [
      {
        serverName: 'site.watch.test',
        certPath: store.livePaths('site').fullchain,
        keyPath: store.livePaths('site').privkey,
      },
      {
        serverName: 'soon.watch.test',
        certPath: files['soon.watch.test.crt']!,
        keyPath: files['soon.watch.test.key']!,
      },
      {
        serverName: 'stale.watch.test',
        certPath: files['stale.watch.test.crt']!,
        keyPath: files['stale.watch.test.key']!,
      },
    ],
  });
  closedPort = await freePort();
  const address = `127.0.0.1:${nginx.httpsPort}`;
  const deploy = [{ type: 'nginx', signal: { pidFile: nginx.pidFile }, verify: { address } }] as const;
  ({ daemon } = await startDaemon(world, [], {
    storage: { path: storage },
    certificates: ['site', 'stale'].map((name) => ({
      name,
      domains: [`${name}.watch.test`],
      challenge: { type: 'http-01', webroot: join(world.work, 'www') },
      deploy: [...deploy],
    })),
    watch: [
      { address, sni: 'site.watch.test', name: 'healthy', caFile: store.livePaths('site').cert, warnDays: 7 },
      { address, sni: 'soon.watch.test', name: 'soon', caFile: files['soon.watch.test.crt'], warnDays: 7 },
      { address, sni: 'other.watch.test', name: 'wrong-name', caFile: store.livePaths('site').cert },
      { address, sni: 'site.watch.test', name: 'untrusted' },
      { address: `127.0.0.1:${closedPort}`, name: 'closed', timeoutSeconds: 1 },
    ],
  }));
  await daemon.firstWatch;
  await daemon.alerts.flush();
});

afterAll(async () => {
  await daemon?.stop({ graceMs: 1000 });
  await nginx?.stop();
  await world?.close();
});

interface EndpointAlert {
  message: string;
  hint: string;
  code: string;
  notAfter: string;
  daysLeft: number;
  endpoint: { name: string; problem: string };
}

const endpointAlerts = () =>
  world.received.filter((r) => r.body.event === 'endpoint').map((r) => r.body as unknown as EndpointAlert);

describe('watch', () => {
  it('alerts on a served certificate close to expiry, a wrong name, an untrusted chain and a closed port', () => {
    const byName = new Map(endpointAlerts().map((a) => [a.endpoint.name, a]));
    expect([...byName.keys()].sort()).toEqual(['closed', 'soon', 'untrusted', 'wrong-name']);
    const soon = byName.get('soon')!;
    expect(soon.endpoint.problem).toBe('expiring');
    expect(soon.code).toBe('CK_WATCH_EXPIRING');
    expect(soon.notAfter).toBe(soonNotAfter.toISOString());
    expect(soon.daysLeft).toBe(1);
    expect(soon.message).toContain(
      `127.0.0.1:${nginx.httpsPort} (SNI soon.watch.test) serves a certificate close to expiry`,
    );
    expect(soon.hint).toMatch(/renew or replace/);
    expect(byName.get('wrong-name')!.endpoint.problem).toBe('name-mismatch');
    expect(byName.get('untrusted')!.endpoint.problem).toBe('untrusted');
    expect(byName.get('closed')!.endpoint.problem).toBe('unreachable');
    expect(byName.get('closed')!.message).toContain('connection refused');
  });

  it('exports the served expiry and the probe results', async () => {
    const s = samples(await daemon.metrics.registry.metrics());
    expect(s.get('certkeeper_endpoint_certificate_expiration_timestamp_seconds{endpoint="soon"}')).toBe(
      Math.floor(soonNotAfter.getTime() / 1000),
    );
    expect(s.get('certkeeper_endpoint_probe_success{endpoint="soon"}')).toBe(1);
    expect(s.get('certkeeper_endpoint_probe_success{endpoint="closed"}')).toBe(0);
    expect(s.get('certkeeper_endpoint_certificate_trusted{endpoint="healthy"}')).toBe(1);
    expect(s.get('certkeeper_endpoint_certificate_trusted{endpoint="untrusted"}')).toBe(0);
    expect(s.get('certkeeper_endpoint_certificate_name_match{endpoint="healthy"}')).toBe(1);
    expect(s.get('certkeeper_endpoint_certificate_name_match{endpoint="wrong-name"}')).toBe(0);
  });

  it('repeats an alert at most daily while the problem lasts', async () => {
    const before = endpointAlerts().length;
    await daemon.watcher.runDue(true);
    await daemon.alerts.flush();
    expect(daemon.watcher.endpoints.get('soon')!.problems).toEqual(['expiring']);
    expect(endpointAlerts().length).toBe(before);
  });

  it('probes each endpoint again after its own interval', async () => {
    let clock = Date.now();
    const pending: { fn: () => void; ms: number }[] = [];
    const address = `127.0.0.1:${nginx.httpsPort}`;
    const config = parseConfig({
      acme: { directoryUrl: world.caUrl },
      watch: [
        { address, sni: 'soon.watch.test', name: 'fast', intervalSeconds: 60 },
        { address, sni: 'site.watch.test', name: 'slow', intervalSeconds: 600 },
      ],
    });
    const w = new Watcher({
      config,
      logger: silentLogger,
      alerts: new AlertDispatcher([], { logger: silentLogger }),
      now: () => new Date(clock),
      timers: { setTimeout: (fn, ms) => pending.push({ fn, ms }), clearTimeout: () => {} },
      liveSerial: () => undefined,
    });
    await w.start();
    expect(w.probes).toBe(2);
    expect(pending.at(-1)!.ms).toBe(60_000);
    const first = w.endpoints.get('fast')!.checkedAt;
    clock += 60_000;
    pending.at(-1)!.fn();
    await w.runDue();
    expect(w.probes).toBe(3); // only "fast" was due
    expect(w.endpoints.get('fast')!.checkedAt).not.toBe(first);
    expect(pending.at(-1)!.ms).toBe(60_000);
    // A reloaded configuration: "fast" removed, "slow" unchanged (keeps its schedule), "added" probed at once.
    w.setConfig(
      parseConfig({
        acme: { directoryUrl: world.caUrl },
        watch: [
          { address, sni: 'site.watch.test', name: 'slow', intervalSeconds: 600 },
          { address, sni: 'soon.watch.test', name: 'added' },
        ],
      }),
    );
    await w.runDue();
    expect([...w.endpoints.keys()].sort()).toEqual(['added', 'slow']);
    expect(w.probes).toBe(4);
    expect(w.endpoints.get('added')!.problems).toContain('untrusted');
    await w.stop();
  });

  it("compares what nginx serves for the daemon's certificates with the store", async () => {
    await daemon.tick();
    await daemon.servedCheck;
    const s = samples(await daemon.metrics.registry.metrics());
    const addr = `127.0.0.1:${nginx.httpsPort}`;
    expect(s.get(`certkeeper_certificate_served_serial_match{name="site",address="${addr}"}`)).toBe(1);
    expect(s.get(`certkeeper_certificate_served_serial_match{name="stale",address="${addr}"}`)).toBe(0);
    // The endpoint and served series keep to the exposition rules too.
    const lint = spawnSync('/usr/bin/promtool', ['check', 'metrics'], {
      input: await daemon.metrics.registry.metrics(),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
    const served = new X509(await fs.readFile(files['stale.watch.test.crt']!, 'utf8'));
    expect(
      s.get(`certkeeper_certificate_served_expiration_timestamp_seconds{name="stale",address="${addr}"}`),
    ).toBe(Math.floor(Date.parse(served.validTo) / 1000));
    const page = (await daemon.app!.inject({ method: 'GET', url: '/' })).body;
    expect(page).toContain('data-endpoint="soon"');
    expect(page).toMatch(/data-endpoint="soon">.*<span class="badge warn">expiring<\/span>/s);
    expect(page).toMatch(/data-cert="stale">[\s\S]*?serves another/);
    expect(page).toMatch(/data-cert="site">[\s\S]*?serves live/);
  });
});
