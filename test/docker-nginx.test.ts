/**
 * The compose walk-through, end to end, in a PRIVATE dockerd: the nginx server blocks from nginx/templates/, the
 * certkeeper config from docker/certkeeper.yml (label mode), a first boot on the placeholder, issuance from Pebble
 * through the pipeline, and the failure cases. Differences from production, all forced by the sandbox: the nginx
 * image is Debian's nginx imported from this machine (no registry), containers use host networking and listen on
 * 127.0.0.1 free ports instead of 80/443, and Pebble stands in for Let's Encrypt.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { certInfo } from '../src/crypto/pem.js';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import { ensureBootstrap } from '../src/deploy/bootstrap.js';
import { create } from '../src/deploy/nginx/index.js';
import { nginxDeploySchema } from '../src/deploy/nginx/schema.js';
import type { DeployContext } from '../src/deploy/types.js';
import { CertkeeperError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { renew } from '../src/renew.js';
import { CertStore } from '../src/store/store.js';
import { probeServedCertificate } from '../src/verify/tls-probe.js';
import { buildNginxImage, type DockerdHandle, NGINX_IMAGE, startDockerd } from './harness/dockerd.js';
import {
  freePorts,
  isListening,
  type PebbleHandle,
  pollUntil,
  simpleRequest,
  startPebble,
  verifyChain,
} from './harness/index.js';

const REPO = resolve(import.meta.dirname, '..');
const DOMAIN = 'certkeeper.test';
const LABEL = 'certkeeper.reload=nginx';

let dockerd: DockerdHandle;
let pebble: PebbleHandle;
let work: string;
let storage: string;
let webroot: string;
let confd: string;
let httpPort: number;
let httpsPort: number;
let cfg: Config;
let store: CertStore;

/** nginx/templates/default.conf.template as the official image's envsubst would render it, moved to loopback test ports. */
async function renderServerBlocks(): Promise<string> {
  const template = await fs.readFile(join(REPO, 'nginx/templates/default.conf.template'), 'utf8');
  const env: Record<string, string> = { DOMAINS: `${DOMAIN} www.${DOMAIN}`, CERT_NAME: DOMAIN };
  let out = template.replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => env[name] ?? whole);
  const before = out;
  out = out
    .replace(/^\s*listen \[::\]:\d+.*\n/gm, '')
    .replace(/listen 80;/g, `listen 127.0.0.1:${httpPort};`)
    .replace(/listen 443 ssl;/g, `listen 127.0.0.1:${httpsPort} ssl;`);
  expect(out).not.toBe(before); // the template still has the listen lines this rewrite expects
  return out;
}

/** docker/certkeeper.yml as compose runs it, pointed at Pebble and at this test's folders. */
function loadComposeConfig(text: string): Config {
  const c = parseConfigText(text, {
    env: { DOMAIN, ACME_EMAIL: `ops@${DOMAIN}`, ACME_DIRECTORY: pebble.directoryUrl },
    source: 'docker/certkeeper.yml',
  });
  c.acme.caBundle = pebble.caBundlePath;
  c.storage.path = storage;
  c.selfCheck = { ...c.selfCheck, httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 };
  const cert = c.certificates[0]!;
  if (cert.challenge.type !== 'http-01') throw new Error('docker/certkeeper.yml should use http-01');
  expect(cert.challenge.webroot).toBe('/var/www/certbot');
  cert.challenge.webroot = webroot;
  const d = cert.deploy[0]!;
  if (d.type !== 'nginx') throw new Error('docker/certkeeper.yml should deploy to nginx');
  expect(d.docker).toEqual({ label: LABEL });
  d.verify = { ...d.verify, address: `127.0.0.1:${httpsPort}` };
  return c;
}

async function served(sni = DOMAIN): Promise<string> {
  return (await probeServedCertificate({ host: '127.0.0.1', port: httpsPort }, sni)).serial;
}

/**
 * What the next connections get for each name: no waiting here. The deployer's verify returns only once every name
 * has been served the new serial for its settle period (old workers gone), so from then on every handshake agrees.
 */
async function servedNow(snis = [DOMAIN, `www.${DOMAIN}`], times = 3): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < times; i++) for (const sni of snis) seen.add(await served(sni));
  return [...seen];
}

async function containerLogs(): Promise<string> {
  return dockerd.cli(['logs', '--tail', '30', 'nginx']).catch((e: unknown) => String(e));
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-docker-'));
  await fs.chmod(work, 0o755); // nginx workers (user nginx) read the webroot
  storage = join(work, 'letsencrypt');
  webroot = join(work, 'www');
  confd = join(work, 'conf.d');
  await Promise.all([fs.mkdir(storage), fs.mkdir(webroot), fs.mkdir(confd)]);
  [httpPort, httpsPort] = (await freePorts(2)) as [number, number];
  [dockerd, pebble] = await Promise.all([startDockerd(), startPebble({ httpPort })]);
  await buildNginxImage(dockerd);
  // The pipeline builds its own Docker client, which reads DOCKER_HOST like the docker CLI does.
  process.env.DOCKER_HOST = dockerd.host;
  await fs.writeFile(join(confd, 'default.conf'), await renderServerBlocks());
  cfg = loadComposeConfig(await fs.readFile(join(REPO, 'docker/certkeeper.yml'), 'utf8'));
  store = new CertStore(storage);
});

afterAll(async () => {
  delete process.env.DOCKER_HOST;
  await Promise.all([dockerd?.stop(), pebble?.stop()]);
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('nginx in Docker, the compose walk-through', () => {
  let issuedSerial = '';

  it('first boot: the placeholder lets the nginx container start and serve TLS', async () => {
    expect(await ensureBootstrap(cfg.certificates[0]!, store, silentLogger)).toBe(true);
    const placeholder = await store.current(DOMAIN);
    expect(placeholder?.placeholder).toBe(true);

    const container = await dockerd.docker.createContainer({
      Image: NGINX_IMAGE,
      name: 'nginx',
      Labels: { 'certkeeper.reload': 'nginx' },
      HostConfig: {
        NetworkMode: 'host',
        Binds: [
          `${storage}:/etc/letsencrypt:ro`,
          `${webroot}:/var/www/certbot:ro`,
          `${confd}:/etc/nginx/conf.d:ro`,
        ],
      },
    });
    await container.start();
    const up = await pollUntil(() => isListening(httpsPort), { attempts: 100, intervalMs: 100 });
    if (!up) throw new Error(`the nginx container did not listen on ${httpsPort}:\n${await containerLogs()}`);

    expect(await served()).toBe(placeholder!.serial);
    // Port 80's server block: ACME files from the shared webroot, a redirect for everything else.
    await fs.mkdir(join(webroot, '.well-known/acme-challenge'), { recursive: true });
    await fs.writeFile(join(webroot, '.well-known/acme-challenge/probe'), 'probe-content');
    const acme = await simpleRequest(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/probe`, {
      headers: { host: DOMAIN },
    });
    expect(acme).toMatchObject({ status: 200, body: 'probe-content' });
    const other = await simpleRequest(`http://127.0.0.1:${httpPort}/page?q=1`, { headers: { host: DOMAIN } });
    expect(other.status).toBe(301);
    expect(other.headers.location).toBe(`https://${DOMAIN}/page?q=1`);
  });

  it('after issuance from Pebble the container serves the Pebble-issued serial (label found, nginx -t, SIGHUP, verify)', async () => {
    const report = await renew(cfg);
    const r = report.results[0]!;
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ name: DOMAIN, status: 'issued', deployFailed: false });
    expect(r.deploy?.[0]).toMatchObject({
      deployer: `nginx:docker:${LABEL}`,
      ok: true,
      observedSerial: r.serial,
    });

    const live = await store.current(DOMAIN);
    expect(live?.placeholder).toBe(false);
    expect(verifyChain(live!.fullchainPem, await pebble.rootPem())).toBe(true);
    issuedSerial = live!.serial;
    expect(r.serial).toBe(issuedSerial);
    expect(await servedNow()).toEqual([issuedSerial]);
    const state = await store.readState(DOMAIN);
    expect(state?.placeholder).toBe(false);
    expect(state?.lastDeploy?.ok).toBe(true);
  });

  it('a broken nginx config: no reload, the old certificate still served, a failure reported', async () => {
    await fs.writeFile(
      join(confd, 'zz-broken.conf'),
      `server {\n    listen 127.0.0.1:${httpPort};\n    this_is_not_a_directive on;\n}\n`,
    );
    try {
      const report = await renew(cfg, { force: true });
      const r = report.results[0]!;
      expect(report.ok).toBe(false);
      expect(r.status).toBe('failed');
      expect(r.deployFailed).toBe(true);
      expect(r.reason).toContain('renewed but not deployed');
      expect(r.reason).toContain('nginx -t fails');
      expect(r.reason).toContain('unknown directive "this_is_not_a_directive"');
      expect(r.reason).toContain('zz-broken.conf');
      // Stored, but not served: nginx was never signalled.
      expect((await store.current(DOMAIN))?.serial).toBe(r.serial);
      expect(r.serial).not.toBe(issuedSerial);
      expect(await served()).toBe(issuedSerial);
      const state = await store.readState(DOMAIN);
      expect(state?.lastDeploy?.ok).toBe(false);
      expect(state?.lastDeploy?.results[0]?.detail).toContain('this_is_not_a_directive');
    } finally {
      await fs.rm(join(confd, 'zz-broken.conf'));
    }
  });

  it('new files nginx rejects: the previous version is put back live, nginx keeps serving', async () => {
    const before = (await store.current(DOMAIN))!;
    const c = await createSelfSigned({ commonName: DOMAIN, altNames: [DOMAIN], days: 2 });
    const other = await createSelfSigned({ commonName: 'x', altNames: ['x.test'], days: 1 });
    const bad = await store.save(DOMAIN, {
      domains: [DOMAIN],
      keyType: 'ecdsa-p256',
      fullchainPem: c.certPem,
      keyPem: other.keyPem,
    });
    const deployer = create(
      nginxDeploySchema.parse({
        type: 'nginx',
        docker: { label: LABEL },
        verify: { address: `127.0.0.1:${httpsPort}` },
      }),
      {
        logger: silentLogger,
        docker: dockerd.docker,
      },
    );
    const ctx: DeployContext = {
      logger: silentLogger,
      getState: () => undefined,
      setState: async () => {},
      rollback: () => store.rollback(DOMAIN),
    };
    const err = (await deployer.deploy(bad, ctx).catch((e: unknown) => e)) as CertkeeperError;
    expect(err).toBeInstanceOf(CertkeeperError);
    expect(err.message).toContain('rejected the new files');
    expect(err.message).toMatch(/key values mismatch/);
    expect((await store.current(DOMAIN))?.serial).toBe(before.serial);
    expect(await served()).toBe(issuedSerial);
  });

  it('reload by exec (`nginx -s reload` in the container) also works', async () => {
    const c = await createSelfSigned({ commonName: DOMAIN, altNames: [DOMAIN, `www.${DOMAIN}`], days: 2 });
    const cert = await store.save(DOMAIN, {
      domains: [DOMAIN],
      keyType: 'ecdsa-p256',
      fullchainPem: c.certPem,
      keyPem: c.keyPem,
    });
    const deployer = create(
      nginxDeploySchema.parse({
        type: 'nginx',
        docker: { container: 'nginx' },
        reload: 'exec',
        verify: { address: `127.0.0.1:${httpsPort}` },
      }),
      { logger: silentLogger, docker: dockerd.docker },
    );
    const res = await deployer.deploy(cert, {
      logger: silentLogger,
      getState: () => undefined,
      setState: async () => {},
      rollback: async () => undefined,
    });
    expect(res).toMatchObject({ ok: true, observedSerial: cert.serial });
    expect(await servedNow([DOMAIN])).toEqual([cert.serial]);
  });

  it('a missing container: a clear error, and the certificate is still stored', async () => {
    const missing: Config = structuredClone(cfg);
    const d = missing.certificates[0]!.deploy[0]!;
    if (d.type !== 'nginx') throw new Error('unexpected deployer');
    d.docker = { container: 'no-such-nginx' };
    const report = await renew(missing, { force: true });
    const r = report.results[0]!;
    expect(r.status).toBe('failed');
    expect(r.deployFailed).toBe(true);
    expect(r.reason).toContain('Docker container "no-such-nginx" not found');
    expect(r.deploy?.[0]?.detail).toContain('docker.container');
    const live = await store.current(DOMAIN);
    expect(live?.serial).toBe(r.serial);
    expect(certInfo(live!.certPem).issuer).toMatch(/Pebble/i);
  });
});
