/**
 * Builds the certkeeper image from docker/Dockerfile in a PRIVATE dockerd, with no registry, and runs it against
 * Pebble. What stands in for the network: the base `node:22-bookworm-slim` is a `docker import` of a Node binary,
 * the few tools the RUN lines use and their libraries (buildNodeBaseImage); the build stage gets `--build-arg
 * PREBUILT=1` and a context whose prebuilt/ holds dist/ compiled here and the production node_modules copied from
 * this checkout (the dependencies package-lock.json does not mark dev). Everything after the build stage — the
 * runtime stage, user, entrypoint, HEALTHCHECK, NODE_OPTIONS — is the Dockerfile as users build it.
 *
 * Node in the image: $CERTKEEPER_NODE22 (a Node 22 binary; CI: `npm install --prefix DIR node@22`, binary at
 * DIR/node_modules/node/bin/node), else the Node running this test.
 */
import { execFile } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certInfo } from '../src/crypto/pem.js';
import { CertStore } from '../src/store/store.js';
import { makeImageContext } from './harness/certkeeper-image.js';
import { buildNodeBaseImage, type DockerdHandle, startDockerd } from './harness/dockerd.js';
import {
  freePort,
  type NginxHandle,
  type PebbleHandle,
  pollUntil,
  simpleRequest,
  startNginx,
  startPebble,
  verifyChain,
} from './harness/index.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');
const IMAGE = 'certkeeper-test/certkeeper:local';
const DOMAIN = 'image.certkeeper.test';
const NODE_BIN = process.env.CERTKEEPER_NODE22 || process.execPath;
const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;

let dockerd: DockerdHandle;
let pebble: PebbleHandle;
let nginx: NginxHandle;
let work: string;
let webroot: string;
let buildLog = '';
const timings: Record<string, number> = {};

async function timed<T>(label: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    timings[label] = Date.now() - t0;
  }
}

/** The build context, as every image test makes it (test/harness/certkeeper-image.ts). */
function makeContext(ctx: string): Promise<void> {
  return timed('context (build, copy node_modules)', () => makeImageContext(ctx));
}

async function runImage(args: string[], opts: { entrypoint?: string } = {}) {
  try {
    const { stdout, stderr } = await run(
      '/usr/bin/docker',
      [
        '-H',
        dockerd.host,
        'run',
        '--rm',
        '--pull',
        'never',
        '--network',
        'host',
        ...(opts.entrypoint ? ['--entrypoint', opts.entrypoint] : []),
        ...args,
      ],
      {
        timeout: 60_000,
        env: { PATH: '/usr/bin:/bin', HOME: dockerd.dir, DOCKER_CONFIG: join(dockerd.dir, 'cli') },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  const t0 = Date.now();
  work = await fs.mkdtemp(join(tmpdir(), 'ck-image-'));
  await fs.chmod(work, 0o755);
  const ctx = join(work, 'context');
  await fs.mkdir(ctx);
  webroot = join(work, 'www');
  await fs.mkdir(webroot);
  const nginxStarted = startNginx({ webroot });
  const dockerdStarted = timed('dockerd', () => startDockerd());
  const base = dockerdStarted.then((d) => timed('import base', () => buildNodeBaseImage(d, NODE_BIN)));
  await makeContext(ctx);
  [dockerd, nginx] = await Promise.all([dockerdStarted, nginxStarted]);
  // Pebble starts while the image builds: the build does not need it.
  const pebbleStarted = startPebble({ httpPort: nginx.httpPort });
  await base;
  const built = timed('docker build', () =>
    dockerd.cli(
      ['build', '--build-arg', 'PREBUILT=1', '-f', join(REPO, 'docker/Dockerfile'), '-t', IMAGE, ctx],
      {
        timeoutMs: 120_000,
      },
    ),
  );
  const [p, log] = await Promise.allSettled([pebbleStarted, built]);
  if (p.status === 'fulfilled') pebble = p.value;
  if (p.status === 'rejected') throw p.reason;
  if (log.status === 'rejected') throw log.reason;
  buildLog = log.value;
  timings.total = Date.now() - t0;
  const driver = (await dockerd.cli(['info', '--format', '{{.Driver}}'])).trim();
  console.log(
    `docker image test setup (ms): ${JSON.stringify(timings)}; node in the image: ${NODE_BIN}; storage driver ${driver}`,
  );
}, 150_000);

afterAll(async () => {
  await Promise.all([dockerd?.stop(), pebble?.stop(), nginx?.stop()]);
  if (work) await fs.rm(work, { recursive: true, force: true });
}, 60_000);

describe('the certkeeper image, built offline from docker/Dockerfile', () => {
  it('builds; runs as the unprivileged node user with the HEALTHCHECK and NODE_OPTIONS the Dockerfile sets', async () => {
    expect(buildLog).toMatch(/Successfully (built|tagged)/);
    const [info] = JSON.parse(await dockerd.cli(['image', 'inspect', IMAGE])) as Array<{
      Config: {
        User: string;
        Entrypoint: string[];
        Cmd: string[];
        Env: string[];
        Healthcheck?: { Test: string[] };
      };
    }>;
    expect(info!.Config.User).toBe('node');
    expect(info!.Config.Entrypoint).toEqual(['certkeeper-entrypoint']);
    expect(info!.Config.Cmd).toEqual(['run']);
    expect(info!.Config.Env).toContain('NODE_OPTIONS=--max-semi-space-size=1');
    expect(info!.Config.Env).toContain('MALLOC_ARENA_MAX=2');
    const test = info!.Config.Healthcheck?.Test ?? [];
    expect(test[0]).toBe('CMD');
    expect(test.join(' ')).toContain('http://127.0.0.1:8080/readyz');

    // The health check command itself runs in the image: with no daemon listening it says "unhealthy" (exit 1),
    // not "command not found" (127) or a crash.
    const health = await runImage([IMAGE, ...test.slice(2)], { entrypoint: test[1]! });
    expect(health).toMatchObject({ code: 1, stderr: '' });
  });

  it('`certkeeper --version` works in the image, on the Node it ships', async () => {
    const v = await runImage([IMAGE, '--version']);
    expect(v.stderr).toBe('');
    expect(v).toMatchObject({ code: 0 });
    expect(v.stdout.trim()).toBe(VERSION);
    const node = await runImage([IMAGE, '--version'], { entrypoint: 'node' });
    const expected = (await run(NODE_BIN, ['--version'])).stdout.trim();
    expect(node.stdout.trim()).toBe(expected);
    // The Prometheus rules and the Grafana dashboard ship in the image, as in the repository (node lists them: the
    // stand-in base image has no shell tools).
    const ls = await runImage(
      [
        IMAGE,
        '-e',
        "const fs = require('fs'); const d = '/usr/share/certkeeper/monitoring/'; console.log([...fs.readdirSync(d + 'prometheus'), ...fs.readdirSync(d + 'grafana')].join(' '))",
      ],
      { entrypoint: 'node' },
    );
    expect(ls.stderr).toBe('');
    expect(ls.stdout).toContain('certkeeper-rules.yml');
    expect(ls.stdout).toContain('certkeeper-dashboard.json');
  });

  it('`certkeeper renew` in the container, as uid 1000, issues from Pebble into the mounted /etc/letsencrypt', async () => {
    const conf = join(work, 'conf');
    const storage = join(work, 'letsencrypt');
    await fs.mkdir(conf);
    await fs.mkdir(storage);
    await fs.copyFile(pebble.caBundlePath, join(conf, 'pebble-ca.pem'));
    await fs.writeFile(
      join(conf, 'certkeeper.yml'),
      [
        'acme:',
        `  directoryUrl: ${pebble.directoryUrl}`,
        `  email: ops@${DOMAIN}`,
        '  caBundle: /etc/certkeeper/pebble-ca.pem',
        'storage:',
        '  path: /etc/letsencrypt',
        `selfCheck: { httpPort: ${nginx.httpPort}, resolvers: ["${pebble.dnsServer}"], timeoutSeconds: 3 }`,
        'certificates:',
        `  - name: ${DOMAIN}`,
        `    domains: ["${DOMAIN}"]`,
        '    challenge: { type: http-01, webroot: /var/www/certbot }',
        '',
      ].join('\n'),
    );
    // A fresh data folder handed to the image's default user, as the README says (chown -R 1000:1000).
    await fs.chown(storage, 1000, 1000);
    await fs.chown(webroot, 1000, 1000);

    const r = await timed('renew in container', () =>
      runImage([
        '-v',
        `${conf}:/etc/certkeeper:ro`,
        '-v',
        `${storage}:/etc/letsencrypt`,
        '-v',
        `${webroot}:/var/www/certbot`,
        IMAGE,
        'renew',
      ]),
    );
    expect(r.stderr + r.stdout).not.toMatch(/EACCES|permission denied/i);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);

    const live = await new CertStore(storage).current(DOMAIN);
    expect(live?.placeholder).toBeFalsy();
    expect(certInfo(live!.certPem).issuer).toMatch(/Pebble/i);
    expect(verifyChain(live!.fullchainPem, await pebble.rootPem())).toBe(true);
    // Written by the container's user, not by root.
    const key = await fs.stat(join(storage, 'live', DOMAIN, 'privkey.pem'));
    expect(key.uid).toBe(1000);
    expect(key.mode & 0o777).toBe(0o600);
    console.log(`renew in container: ${timings['renew in container']} ms`);
  });

  it('the default command `run` starts the daemon through the entrypoint with its low-memory V8 flags', async () => {
    const port = await freePort();
    const docker = (args: string[]) =>
      run('/usr/bin/docker', ['-H', dockerd.host, ...args], {
        timeout: 30_000,
        env: { PATH: '/usr/bin:/bin', HOME: dockerd.dir, DOCKER_CONFIG: join(dockerd.dir, 'cli') },
      });
    const id = (
      await docker([
        'run',
        '-d',
        '--pull',
        'never',
        '--network',
        'host',
        '-v',
        `${join(work, 'conf')}:/etc/certkeeper:ro`,
        '-v',
        `${join(work, 'letsencrypt')}:/etc/letsencrypt`,
        '-v',
        `${webroot}:/var/www/certbot`,
        IMAGE,
        'run',
        '--listen',
        `127.0.0.1:${port}`,
      ])
    ).stdout.trim();
    try {
      const healthy = await pollUntil(
        async () =>
          (await simpleRequest(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200,
        { attempts: 100, intervalMs: 100 },
      );
      expect(healthy, String((await docker(['logs', id]).catch((e: { stderr?: string }) => e)).stderr)).toBe(
        true,
      );
      const top = (await docker(['top', id, '-o', 'pid,args'])).stdout;
      expect(top).toMatch(
        /node --max-semi-space-size=1 --no-opt --no-sparkplug --single-threaded-gc --bytecode-old-age=1 \/app\/dist\/cli\/main\.js run/,
      );
    } finally {
      await docker(['rm', '-f', id]).catch(() => undefined);
    }
  });
});
