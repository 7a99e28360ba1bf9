/**
 * "Renewed but not deployed" is not forgotten: when a deployer fails after the certificate was stored, the next run
 * deploys the stored certificate again without ordering a new one, and status shows the failure until then.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AcmeRequestEvent, acmeEvents } from '../src/acme/http.js';
import { collectStatus, formatStatusTable } from '../src/cli/status.js';
import { parseConfig } from '../src/config/load.js';
import { renew } from '../src/renew.js';
import { CertStore } from '../src/store/store.js';
import { probeServedCertificate } from '../src/verify/tls-probe.js';
import {
  freePort,
  type NginxHandle,
  type PebbleHandle,
  pollUntil,
  startNginx,
  startPebble,
} from './harness/index.js';

const DOMAIN = 'redeploy.certkeeper.test';
let work: string;
let nginx: NginxHandle;
let pebble: PebbleHandle;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-redeploy-'));
  const webroot = join(work, 'www');
  await fs.mkdir(webroot);
  const httpPort = await freePort();
  // nginx starts on the first-boot placeholder, which the pipeline writes for nginx-deployed certificates
  const draft = config('/nonexistent/nginx.pid', httpPort, 1);
  const { ensureBootstrap } = await import('../src/deploy/bootstrap.js');
  const { silentLogger } = await import('../src/log.js');
  await ensureBootstrap(draft.certificates[0]!, new CertStore(draft.storage.path), silentLogger);
  const live = join(work, 'le', 'live', 'site');
  nginx = await startNginx({
    webroot,
    httpPort,
    tlsServers: [
      { serverName: DOMAIN, certPath: join(live, 'fullchain.pem'), keyPath: join(live, 'privkey.pem') },
    ],
  });
  pebble = await startPebble({ httpPort });
});
afterAll(async () => {
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

function config(pidFile: string, httpPort = nginx.httpPort, httpsPort = nginx.httpsPort!) {
  return parseConfig({
    acme: { directoryUrl: pebble?.directoryUrl ?? 'https://127.0.0.1:1/dir', caBundle: pebble?.caBundlePath },
    storage: { path: join(work, 'le') },
    selfCheck: { httpPort, resolvers: pebble ? [pebble.dnsServer] : undefined },
    certificates: [
      {
        name: 'site',
        domains: [DOMAIN],
        challenge: { type: 'http-01', webroot: join(work, 'www') },
        deploy: [
          {
            type: 'nginx',
            signal: { pidFile },
            verify: { address: `127.0.0.1:${httpsPort}`, timeoutSeconds: 3 },
          },
        ],
      },
    ],
  });
}

describe('redeploy after a failed deploy', () => {
  it('reports "renewed but not deployed", keeps the certificate, then deploys it on the next run without a new order', async () => {
    const first = await renew(config(join(work, 'wrong.pid')));
    const r = first.results[0]!;
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'CK_ERR_NOT_DEPLOYED' });
    expect(r.reason).toMatch(/^renewed but not deployed: /);
    const issuedSerial = r.serial!;
    expect(issuedSerial).toMatch(/^[0-9A-F]+$/);
    const status = (await collectStatus(config(nginx.pidFile))).find((s) => s.name === 'site')!;
    expect(status.lastDeploy?.ok).toBe(false);
    // nginx still serves the placeholder: it was never reloaded
    expect(
      (await probeServedCertificate({ host: '127.0.0.1', port: nginx.httpsPort! }, DOMAIN)).serial,
    ).not.toBe(issuedSerial);

    const orders: AcmeRequestEvent[] = [];
    const listen = (e: AcmeRequestEvent) => e.endpoint === 'newOrder' && orders.push(e);
    acmeEvents.on('request', listen);
    try {
      const second = await renew(config(nginx.pidFile));
      expect(second.results[0]).toMatchObject({ status: 'redeployed', serial: issuedSerial });
      expect(second.ok).toBe(true);
    } finally {
      acmeEvents.off('request', listen);
    }
    expect(orders).toEqual([]);
    expect((await probeServedCertificate({ host: '127.0.0.1', port: nginx.httpsPort! }, DOMAIN)).serial).toBe(
      issuedSerial,
    );
    const third = await renew(config(nginx.pidFile));
    expect(third.results[0]?.status).toBe('skipped');
  });

  it('killed between storing and reloading: status says not deployed, and the next run deploys that serial', async () => {
    // The reload command hangs while the marker exists: the CLI is killed there, after the switch, before nginx
    // was told. (Without the intent written before the switch, every later run would say "not due".)
    const marker = join(work, 'hang-reload');
    await fs.writeFile(marker, '');
    const reload = [
      'sh',
      '-c',
      `if [ -e '${marker}' ]; then echo $$ > '${marker}.pid'; exec sleep 60; fi; kill -HUP "$(cat '${nginx.pidFile}')"`,
    ];
    const cfg = config(nginx.pidFile);
    const input = {
      acme: { directoryUrl: pebble.directoryUrl, caBundle: pebble.caBundlePath },
      storage: cfg.storage,
      selfCheck: { httpPort: nginx.httpPort, resolvers: [pebble.dnsServer] },
      certificates: [
        {
          name: 'site',
          domains: [DOMAIN],
          challenge: { type: 'http-01', webroot: join(work, 'www') },
          deploy: [
            {
              type: 'nginx',
              command: reload,
              verify: { address: `127.0.0.1:${nginx.httpsPort}`, timeoutSeconds: 3 },
            },
          ],
        },
      ],
    };
    const file = join(work, 'kill.json');
    await fs.writeFile(file, JSON.stringify(input));
    const before = (await probeServedCertificate({ host: '127.0.0.1', port: nginx.httpsPort! }, DOMAIN))
      .serial;
    const main = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', main, '-c', file, 'renew', '--force'], {
      env: { PATH: process.env.PATH, LOG_FORMAT: 'json' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise((r) => child.once('exit', r));
    const stored = await pollUntil(async () => /"event":"renew\.stored"/.test(err), {
      attempts: 600,
      intervalMs: 20,
    });
    expect(stored, err).toBe(true);
    await new Promise((r) => setTimeout(r, 200)); // inside the hanging reload
    child.kill('SIGKILL');
    await exited;
    await fs.rm(marker);
    // the hanging reload command outlived the killed CLI: stop it by its pid
    const hung = Number(await fs.readFile(`${marker}.pid`, 'utf8').catch(() => '0'));
    if (hung > 0) process.kill(hung, 'SIGKILL');
    const store = new CertStore(cfg.storage.path);
    const live = (await store.current('site'))!;
    expect(live.serial).not.toBe(before);
    expect((await probeServedCertificate({ host: '127.0.0.1', port: nginx.httpsPort! }, DOMAIN)).serial).toBe(
      before,
    );
    const parsed = parseConfig(input);
    const row = (await collectStatus(parsed)).find((s) => s.name === 'site')!;
    expect(row).toMatchObject({ deployed: false, serial: live.serial });
    expect(formatStatusTable([row])).toMatch(/not deployed/);

    const next = await renew(parsed);
    expect(next.results[0]).toMatchObject({ status: 'redeployed', serial: live.serial });
    expect((await probeServedCertificate({ host: '127.0.0.1', port: nginx.httpsPort! }, DOMAIN)).serial).toBe(
      live.serial,
    );
    expect((await collectStatus(parsed)).find((s) => s.name === 'site')).toMatchObject({ deployed: true });
  });
});
