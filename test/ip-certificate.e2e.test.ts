/**
 * An IP-address certificate end to end (RFC 8738): `domains: [127.0.0.1]` ordered from Debian's Pebble 2.4 (which
 * issues for IP identifiers; with no profile configured the config allows them) over HTTP-01 through the webroot
 * nginx serves, deployed to that nginx and verified by a TLS handshake to the address without SNI (an IP literal is
 * not a valid SNI, RFC 6066 §3), so nginx answers with its default server.
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AcmeRequestEvent, acmeEvents } from '../src/acme/http.js';
import { collectStatus, formatStatusTable } from '../src/cli/status.js';
import { parseConfig } from '../src/config/load.js';
import { certInfo } from '../src/crypto/pem.js';
import { ensureBootstrap } from '../src/deploy/bootstrap.js';
import { silentLogger } from '../src/log.js';
import { renew } from '../src/renew.js';
import { CertStore } from '../src/store/store.js';
import { probeServedCertificate } from '../src/verify/tls-probe.js';
import {
  freePort,
  type NginxHandle,
  type PebbleHandle,
  startNginx,
  startPebble,
  verifyChain,
} from './harness/index.js';

const IP = '127.0.0.1';
let work: string;
let webroot: string;
let nginx: NginxHandle;
let pebble: PebbleHandle;
let httpPort: number;

function config(httpsPort: number) {
  return parseConfig(
    {
      acme: {
        directoryUrl: pebble?.directoryUrl ?? 'https://127.0.0.1:1/dir',
        caBundle: pebble?.caBundlePath,
      },
      storage: { path: join(work, 'le') },
      // no resolvers: an address is checked as it is, no DNS involved
      selfCheck: { httpPort, timeoutSeconds: 3 },
      certificates: [
        {
          name: 'ip',
          domains: [IP],
          challenge: { type: 'http-01', webroot },
          deploy: [
            {
              type: 'nginx',
              signal: { pidFile: nginx?.pidFile ?? '/nonexistent/nginx.pid' },
              verify: { address: `127.0.0.1:${httpsPort}`, timeoutSeconds: 5 },
            },
          ],
        },
      ],
    },
    { env: {} },
  );
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-ipcert-'));
  webroot = join(work, 'www');
  await fs.mkdir(webroot);
  httpPort = await freePort();
  const httpsPort = await freePort();
  // nginx starts on the first-boot placeholder (an IP SAN too), as for any nginx-deployed certificate
  const draft = config(httpsPort);
  await ensureBootstrap(draft.certificates[0]!, new CertStore(draft.storage.path), silentLogger);
  const live = join(work, 'le', 'live', 'ip');
  nginx = await startNginx({
    webroot,
    httpPort,
    httpsPort,
    tlsServers: [
      { serverName: IP, certPath: join(live, 'fullchain.pem'), keyPath: join(live, 'privkey.pem') },
    ],
  });
  pebble = await startPebble({ httpPort });
});

afterAll(async () => {
  await pebble?.stop();
  await nginx?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('IP-address certificates', () => {
  it('issues a certificate for 127.0.0.1 over HTTP-01, deploys it to nginx and verifies what is served', async () => {
    const cfg = config(nginx.httpsPort!);
    const orders: AcmeRequestEvent[] = [];
    const listen = (e: AcmeRequestEvent) => e.endpoint === 'newOrder' && orders.push(e);
    acmeEvents.on('request', listen);
    let report: Awaited<ReturnType<typeof renew>>;
    try {
      report = await renew(cfg);
    } finally {
      acmeEvents.off('request', listen);
    }
    const r = report.results[0]!;
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ name: 'ip', status: 'issued', deployFailed: false });
    expect(orders).toHaveLength(1);

    // the certificate names the address as an iPAddress SAN and nothing else; its chain verifies
    const live = join(cfg.storage.path, 'live', 'ip');
    const certPem = await fs.readFile(join(live, 'cert.pem'), 'utf8');
    const x = new X509Certificate(certPem);
    expect(x.subjectAltName).toBe(`IP Address:${IP}`);
    expect(x.checkIP(IP)).toBe(IP);
    expect(certInfo(certPem).subjectAltNames).toEqual([IP]);
    expect(verifyChain(await fs.readFile(join(live, 'fullchain.pem'), 'utf8'), await pebble.rootPem())).toBe(
      true,
    );

    // the self-check asked the address itself, before Pebble's validation did
    const access = await fs.readFile(join(nginx.prefix, 'logs', 'access.log'), 'utf8');
    const challengeLines = access.split('\n').filter((l) => l.includes('/.well-known/acme-challenge/'));
    expect(challengeLines.some((l) => l.includes('certkeeper-self-check') && l.includes('" 200 '))).toBe(
      true,
    );

    // nginx serves it on a connection without SNI, as the verify step checked
    expect(r.deploy?.[0]).toMatchObject({ ok: true });
    expect(r.deploy?.[0]?.detail).toMatch(new RegExp(`serves serial ${r.serial}`));
    const served = await probeServedCertificate({ host: IP, port: nginx.httpsPort! }, IP);
    expect(served.serial).toBe(r.serial);

    // status shows the address like any name
    const rows = await collectStatus(cfg);
    expect(rows.find((row) => row.name === 'ip')).toMatchObject({ domains: [IP], validity: 'valid' });
    expect(formatStatusTable(rows)).toMatch(/^ip\s+127\.0\.0\.1\s/m);
  });
});
