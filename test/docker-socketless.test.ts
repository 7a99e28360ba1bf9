/**
 * docker-compose.socketless.yml end to end, in a PRIVATE dockerd: certkeeper without the Docker socket, in nginx's
 * PID namespace (`pid: "service:nginx"`), signalling nginx's master through the pid file on a shared /run volume.
 * The containers get the mounts, PID namespace and config file that `docker-compose config` reads from the shipped
 * file; the very first start is played as compose plays it: nginx's container first (certkeeper needs its PID
 * namespace), its entrypoint waiting for the placeholder certkeeper then writes.
 *
 * What stands in for the network, as in test/docker-nginx.test.ts: nginx is Debian's nginx imported as an image,
 * here with /bin/sh and an entrypoint that runs /docker-entrypoint.d/*.sh like the official image's; certkeeper runs
 * from this checkout's sources on a Node image imported from this machine; host networking on 127.0.0.1 test ports
 * instead of 80/443 (the server blocks are the template's, rendered for those ports); Pebble instead of Let's Encrypt.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { certInfo } from '../src/crypto/pem.js';
import { CertStore } from '../src/store/store.js';
import { probeServedCertificate } from '../src/verify/tls-probe.js';
import {
  buildNginxImage,
  buildNodeBaseImage,
  type DockerdHandle,
  NGINX_IMAGE,
  startDockerd,
} from './harness/dockerd.js';
import {
  freePorts,
  isListening,
  type PebbleHandle,
  pollUntil,
  requireBinaries,
  simpleRequest,
  startPebble,
} from './harness/index.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');
const DOMAIN = 'certkeeper.test';
const NGINX_SH_IMAGE = 'certkeeper-test/nginx-entrypoint:local';
const VOLUME = 'ck-test-nginx-run';

let dockerd: DockerdHandle;
let pebble: PebbleHandle;
let work: string;
let storage: string;
let webroot: string;
let confd: string;
let conf: string;
let httpPort: number;
let httpsPort: number;
let apiPort: number;
let compose: { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };

interface ComposeService {
  image?: string;
  pid?: string;
  user?: string;
  environment?: Record<string, string>;
  depends_on?: unknown;
  volumes?: (string | { type?: string; source: string; target: string; read_only?: boolean })[];
}

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

function mounts(s: ComposeService): Mount[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, readOnly: !!v.read_only };
    const [source, target, mode] = v.split(':') as [string, string, string | undefined];
    return { source, target, readOnly: mode === 'ro' };
  });
}

/** docker-compose.socketless.yml as compose reads it (Debian's docker-compose 1.29, or the v2 plugin). */
async function composeConfig(): Promise<string> {
  const env = { PATH: '/usr/bin:/bin', HOME: tmpdir(), DOMAIN, ACME_EMAIL: `ops@${DOMAIN}` };
  const file = join(REPO, 'docker-compose.socketless.yml');
  try {
    return (
      await run('/usr/bin/docker', ['compose', '-f', file, 'config'], { cwd: REPO, env, timeout: 30_000 })
    ).stdout;
  } catch {
    requireBinaries('/usr/bin/docker-compose');
    return (await run('/usr/bin/docker-compose', ['-f', file, 'config'], { cwd: REPO, env, timeout: 30_000 }))
      .stdout;
  }
}

/** The test's stand-in for each compose source: host folders become temp folders, the named volume a real one. */
function bindFor(m: Mount): string | undefined {
  const map: Record<string, string> = {
    [join(REPO, 'data/certbot/conf')]: storage,
    [join(REPO, 'data/certbot/www')]: webroot,
    [join(REPO, 'docker/certkeeper.socketless.yml')]: join(conf, 'certkeeper.yml'),
    'nginx-run': VOLUME,
  };
  if (m.target === '/etc/nginx/templates') return undefined; // rendered for the test ports into conf.d instead
  const source = map[m.source] ?? (m.source.startsWith(`${REPO}/`) ? m.source : undefined);
  if (!source) throw new Error(`no stand-in for the compose mount ${m.source}:${m.target}`);
  return `${source}:${m.target}${m.readOnly ? ':ro' : ''}`;
}

/** The official image's /docker-entrypoint.sh, as far as it matters here: run /docker-entrypoint.d/*.sh, exec nginx. */
const ENTRYPOINT = `#!/bin/sh
set -e
if [ "$1" = "nginx" ]; then
  for f in /docker-entrypoint.d/*.sh; do
    [ -e "$f" ] || continue
    if [ -x "$f" ]; then echo "$0: Launching $f"; "$f"; else echo "$0: Ignoring $f, not executable"; fi
  done
fi
exec "$@"
`;

/** The imported nginx image plus /bin/sh, sleep and the entrypoint above, built offline FROM it. */
async function buildNginxEntrypointImage(d: DockerdHandle): Promise<void> {
  const ctx = await fs.mkdtemp(join(d.dir, 'nginx-sh-'));
  const files = new Set<string>(['/bin/sh', '/bin/sleep']);
  for (const bin of ['/bin/sh', '/bin/sleep']) {
    const { stdout } = await run('/usr/bin/ldd', [bin]);
    for (const m of stdout.matchAll(/(\/\S+\.so[^\s]*)/g)) files.add(m[1]!);
  }
  for (const f of files) {
    const dest = join(ctx, 'rootfs', f);
    await fs.mkdir(dirname(dest), { recursive: true });
    await fs.copyFile(await fs.realpath(f), dest);
    await fs.chmod(dest, (await fs.stat(f)).mode & 0o777);
  }
  await fs.writeFile(join(ctx, 'rootfs/docker-entrypoint.sh'), ENTRYPOINT, { mode: 0o755 });
  await fs.mkdir(join(ctx, 'rootfs/docker-entrypoint.d'));
  await fs.writeFile(
    join(ctx, 'Dockerfile'),
    `FROM ${NGINX_IMAGE}\nCOPY rootfs/ /\nENTRYPOINT ["/docker-entrypoint.sh"]\nCMD ["nginx", "-g", "daemon off;"]\n`,
  );
  await d.cli(['build', '-t', NGINX_SH_IMAGE, ctx], { timeoutMs: 120_000 });
}

async function renderServerBlocks(): Promise<string> {
  const template = await fs.readFile(join(REPO, 'nginx/templates/default.conf.template'), 'utf8');
  const env: Record<string, string> = { DOMAINS: `${DOMAIN} www.${DOMAIN}`, CERT_NAME: DOMAIN };
  return template
    .replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => env[name] ?? whole)
    .replace(/^\s*listen \[::\]:\d+.*\n/gm, '')
    .replace(/listen 80;/g, `listen 127.0.0.1:${httpPort};`)
    .replace(/listen 443 ssl;/g, `listen 127.0.0.1:${httpsPort} ssl;`);
}

/** docker/certkeeper.socketless.yml with only what the sandbox needs changed: the test CA, its DNS, the test ports. */
async function writeConfig(): Promise<void> {
  const doc = parseDocument(await fs.readFile(join(REPO, 'docker/certkeeper.socketless.yml'), 'utf8'));
  doc.setIn(['acme', 'caBundle'], '/etc/certkeeper/pebble-ca.pem');
  doc.set('selfCheck', { httpPort, resolvers: [pebble.dnsServer], timeoutSeconds: 3 });
  expect(doc.getIn(['certificates', 0, 'deploy', 0, 'signal', 'pidFile'])).toBe('/run/nginx/nginx.pid');
  doc.setIn(['certificates', 0, 'deploy', 0, 'verify', 'address'], `127.0.0.1:${httpsPort}`);
  await fs.writeFile(join(conf, 'certkeeper.yml'), doc.toString());
  await fs.copyFile(pebble.caBundlePath, join(conf, 'pebble-ca.pem'));
}

async function logsOf(name: string): Promise<string> {
  try {
    const { stdout, stderr } = await run('/usr/bin/docker', ['-H', dockerd.host, 'logs', name], {
      env: { PATH: '/usr/bin:/bin', HOME: dockerd.dir, DOCKER_CONFIG: join(dockerd.dir, 'cli') },
      timeout: 30_000,
    });
    return stdout + stderr;
  } catch (err) {
    return String(err);
  }
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-socketless-'));
  await fs.chmod(work, 0o755);
  storage = join(work, 'letsencrypt');
  webroot = join(work, 'www');
  confd = join(work, 'conf.d');
  conf = join(work, 'conf');
  await Promise.all([storage, webroot, confd, conf].map((d) => fs.mkdir(d)));
  [httpPort, httpsPort, apiPort] = (await freePorts(3)) as [number, number, number];
  compose = parse(await composeConfig());
  [dockerd, pebble] = await Promise.all([startDockerd(), startPebble({ httpPort })]);
  await buildNginxImage(dockerd);
  await Promise.all([buildNginxEntrypointImage(dockerd), buildNodeBaseImage(dockerd, process.execPath)]);
  await dockerd.cli(['volume', 'create', VOLUME]);
  await fs.writeFile(join(confd, 'default.conf'), await renderServerBlocks());
  await writeConfig();
}, 240_000);

afterAll(async () => {
  await Promise.all([dockerd?.stop(), pebble?.stop()]);
  if (work) await fs.rm(work, { recursive: true, force: true });
}, 60_000);

describe("docker-compose.socketless.yml: certkeeper in nginx's PID namespace, no Docker socket", () => {
  it('is what compose reads: shared PID namespace and /run, no socket, the wait script, the socket-less config', () => {
    const nginx = compose.services.nginx!;
    const ck = compose.services.certkeeper!;
    expect(ck.pid).toBe('service:nginx');
    expect(ck.user).toBe('0:0');
    const nm = mounts(nginx);
    const cm = mounts(ck);
    expect(cm.some((m) => m.target.includes('docker.sock'))).toBe(false);
    expect(nm.find((m) => m.target === '/run')?.source).toBe('nginx-run');
    expect(cm.find((m) => m.target === '/run/nginx')?.source).toBe('nginx-run');
    expect(Object.keys(compose.volumes ?? {})).toContain('nginx-run');
    expect(nm.find((m) => m.target === '/docker-entrypoint.d/05-wait-for-certificates.sh')?.source).toBe(
      join(REPO, 'nginx/docker-entrypoint.d/05-wait-for-certificates.sh'),
    );
    expect(cm.find((m) => m.target === '/etc/certkeeper/certkeeper.yml')?.source).toBe(
      join(REPO, 'docker/certkeeper.socketless.yml'),
    );
    // nginx must not wait for certkeeper to start: certkeeper needs nginx's PID namespace first.
    expect(nginx.depends_on).toBeUndefined();
  });

  it('first up: nginx waits for the placeholder, certkeeper issues from Pebble and reloads nginx by signal', async () => {
    const nginxSvc = compose.services.nginx!;
    const ckSvc = compose.services.certkeeper!;
    const nginx = await dockerd.docker.createContainer({
      Image: NGINX_SH_IMAGE,
      name: 'nginx',
      Env: Object.entries(nginxSvc.environment ?? {}).map(([k, v]) => `${k}=${v}`),
      HostConfig: {
        NetworkMode: 'host',
        Binds: [
          ...mounts(nginxSvc)
            .map(bindFor)
            .filter((b): b is string => !!b),
          `${confd}:/etc/nginx/conf.d:ro`,
        ],
      },
    });
    await nginx.start();
    // Nothing in live/ yet: the entrypoint waits instead of letting nginx fail.
    expect(
      await pollUntil(
        async () =>
          /waiting for \/etc\/letsencrypt\/live\/certkeeper\.test\/fullchain\.pem/.test(
            await logsOf('nginx'),
          ),
        {
          attempts: 100,
          intervalMs: 100,
        },
      ),
      await logsOf('nginx'),
    ).toBe(true);
    expect(await isListening(httpsPort)).toBe(false);
    expect((await nginx.inspect()).State.Running).toBe(true);

    const ck = await dockerd.docker.createContainer({
      Image: 'node:22-bookworm-slim',
      name: 'certkeeper',
      User: ckSvc.user,
      WorkingDir: '/app',
      Env: [
        ...Object.entries(ckSvc.environment ?? {})
          .filter(([k]) => k !== 'ACME_DIRECTORY')
          .map(([k, v]) => `${k}=${v}`),
        `ACME_DIRECTORY=${pebble.directoryUrl}`,
        'CERTKEEPER_CONFIG=/etc/certkeeper/certkeeper.yml',
        'LOG_FORMAT=json',
      ],
      Cmd: ['node', '--import', 'tsx', '/app/src/cli/main.ts', 'run', '--listen', `127.0.0.1:${apiPort}`],
      HostConfig: {
        NetworkMode: 'host',
        // compose's pid: "service:nginx"
        PidMode: 'container:nginx',
        Binds: [
          ...mounts(ckSvc)
            .map(bindFor)
            .filter((b): b is string => !!b),
          // the test CA's certificate, named by acme.caBundle in the test's copy of the config
          `${join(conf, 'pebble-ca.pem')}:/etc/certkeeper/pebble-ca.pem:ro`,
          // the image's /app, from this checkout's sources
          `${join(REPO, 'src')}:/app/src:ro`,
          `${join(REPO, 'package.json')}:/app/package.json:ro`,
          `${join(REPO, 'tsconfig.json')}:/app/tsconfig.json:ro`,
          `${await fs.realpath(join(REPO, 'node_modules'))}:/app/node_modules:ro`,
        ],
      },
    });
    await ck.start();

    const store = new CertStore(storage);
    const issued = await pollUntil(
      async () => {
        const live = await store.current(DOMAIN).catch(() => undefined);
        const state = await store.readState(DOMAIN).catch(() => undefined);
        return !!live && !live.placeholder && state?.lastDeploy?.ok === true;
      },
      { attempts: 600, intervalMs: 100 },
    );
    expect(issued, `${await logsOf('certkeeper')}\n--- nginx:\n${await logsOf('nginx')}`).toBe(true);
    const live = (await store.current(DOMAIN))!;
    expect(certInfo(live.certPem).issuer).toMatch(/Pebble/i);
    // nginx (PID 1 of its container) was signalled through the pid file and serves the new serial for both names.
    for (const sni of [DOMAIN, `www.${DOMAIN}`]) {
      expect((await probeServedCertificate({ host: '127.0.0.1', port: httpsPort }, sni)).serial).toBe(
        live.serial,
      );
    }
    const state = await store.readState(DOMAIN);
    expect(state?.lastDeploy?.results[0]).toMatchObject({
      deployer: 'nginx:signal:/run/nginx/nginx.pid',
      ok: true,
    });
    const nginxLog = await logsOf('nginx');
    expect(nginxLog).toMatch(/has the certificates nginx needs; starting nginx/);
    // The daemon's API reports it valid.
    const certs = JSON.parse((await simpleRequest(`http://127.0.0.1:${apiPort}/v1/certificates`)).body)
      .certificates as { name: string; validity: string }[];
    expect(certs).toEqual([expect.objectContaining({ name: DOMAIN, validity: 'valid' })]);
  }, 120_000);
});
