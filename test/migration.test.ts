/**
 * The README's "Switching from the certbot two-container setup", played as written on a typical certbot project
 * (the popular nginx + certbot compose file, certificates in ./data/certbot/conf in certbot's layout). The commands
 * and the compose snippet are read from the README itself, so the walk-through and this test cannot drift apart.
 *
 * What the private dockerd cannot do as written: `git clone` (this checkout stands in for the clone) and the
 * image build's `npm ci` (the image is built from docker/Dockerfile offline, as test/docker-image.test.ts does);
 * `docker compose up` is not run (no registry for nginx's image, no ports 80/443): compose checks the edited file
 * (`docker-compose config`) and certkeeper's `status` runs in the built image with exactly the mounts compose reads.
 */
import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import { buildCertkeeperImage } from './harness/certkeeper-image.js';
import { type DockerdHandle, startDockerd } from './harness/dockerd.js';
import { requireBinaries } from './harness/index.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');
const DOMAIN = 'example.com';

let dockerd: DockerdHandle;
let home: string;
let project: string;
let serial: string;
let section: string;

/** A certbot project as the common nginx + certbot tutorial sets it up. */
const CERTBOT_COMPOSE = `version: '3'
services:
  nginx:
    image: nginx:1.27-bookworm
    restart: unless-stopped
    volumes:
      - ./data/nginx:/etc/nginx/conf.d
      - ./data/certbot/conf:/etc/letsencrypt
      - ./data/certbot/www:/var/www/certbot
    ports:
      - "80:80"
      - "443:443"
    command: "/bin/sh -c 'while :; do sleep 6h & wait $\${!}; nginx -s reload; done & nginx -g \\"daemon off;\\"'"
  certbot:
    image: certbot/certbot
    restart: unless-stopped
    volumes:
      - ./data/certbot/conf:/etc/letsencrypt
      - ./data/certbot/www:/var/www/certbot
    entrypoint: "/bin/sh -c 'trap exit TERM; while :; do certbot renew; sleep 12h & wait $\${!}; done;'"
`;

/** Code blocks of the walk-through, in order, without the list indentation. */
function blocks(lang: string): string[] {
  return [...section.matchAll(/^( *)```(\w+)\n([\s\S]*?)^\1```/gm)]
    .filter((m) => m[2] === lang)
    .map((m) =>
      m[3]!
        .split('\n')
        .map((l) => l.slice(m[1]!.length))
        .join('\n'),
    );
}

async function sh(command: string, cwd: string): Promise<string> {
  return (
    await run('/bin/sh', ['-c', command], {
      cwd,
      env: { PATH: '/usr/bin:/bin', HOME: home },
      timeout: 30_000,
    })
  ).stdout;
}

async function composeConfig(): Promise<{ services: Record<string, ComposeService> }> {
  const env = { PATH: '/usr/bin:/bin', HOME: home };
  let out: string;
  try {
    out = (await run('/usr/bin/docker', ['compose', 'config'], { cwd: project, env, timeout: 30_000 }))
      .stdout;
  } catch {
    requireBinaries('/usr/bin/docker-compose');
    out = (await run('/usr/bin/docker-compose', ['config'], { cwd: project, env, timeout: 30_000 })).stdout;
  }
  return parse(out);
}

interface ComposeService {
  image?: string;
  user?: string;
  command?: unknown;
  labels?: Record<string, string>;
  environment?: Record<string, string>;
  volumes?: (string | { source: string; target: string; read_only?: boolean })[];
}

function binds(s: ComposeService): { source: string; target: string; ro: boolean }[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, ro: !!v.read_only };
    const [source, target, mode] = v.split(':') as [string, string, string | undefined];
    return { source, target, ro: mode === 'ro' };
  });
}

beforeAll(async () => {
  const readme = await fs.readFile(join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('### Switching from the certbot two-container setup');
  section = readme.slice(start, readme.indexOf('How adoption works:', start));
  expect(start).toBeGreaterThan(0);

  home = await fs.mkdtemp(join(tmpdir(), 'ck-migrate-'));
  await fs.chmod(home, 0o755);
  project = join(home, 'myproject');
  // The certbot project: its compose file, its nginx conf.d, and a certificate in certbot's layout.
  const conf = join(project, 'data/certbot/conf');
  await fs.mkdir(join(conf, 'archive', DOMAIN), { recursive: true });
  await fs.mkdir(join(conf, 'live', DOMAIN), { recursive: true });
  await fs.mkdir(join(conf, 'renewal'), { recursive: true });
  await fs.mkdir(join(project, 'data/certbot/www'), { recursive: true });
  await fs.mkdir(join(project, 'data/nginx'), { recursive: true });
  const c = await createSelfSigned({ commonName: DOMAIN, altNames: [DOMAIN, `www.${DOMAIN}`], days: 90 });
  const files = { cert: c.certPem, chain: c.certPem, fullchain: c.certPem, privkey: c.keyPem };
  for (const [f, content] of Object.entries(files)) {
    await fs.writeFile(join(conf, 'archive', DOMAIN, `${f}1.pem`), content, {
      mode: f === 'privkey' ? 0o600 : 0o644,
    });
    await fs.symlink(`../../archive/${DOMAIN}/${f}1.pem`, join(conf, 'live', DOMAIN, `${f}.pem`));
  }
  await fs.writeFile(
    join(conf, 'renewal', `${DOMAIN}.conf`),
    `archive_dir = /etc/letsencrypt/archive/${DOMAIN}\n`,
  );
  serial = (await import('../src/crypto/pem.js')).certInfo(c.certPem).serial;
  await fs.writeFile(join(project, 'docker-compose.yml'), CERTBOT_COMPOSE);
  await fs.writeFile(join(project, '.env'), `DOMAIN=${DOMAIN}\nACME_EMAIL=ops@${DOMAIN}\n`);
  // The clone of this repository.
  await fs.symlink(REPO, join(home, 'certkeeper'));
  dockerd = await startDockerd();
}, 60_000);

afterAll(async () => {
  await dockerd?.stop();
  if (home) await fs.rm(home, { recursive: true, force: true });
}, 60_000);

describe('switching from the certbot two-container setup, as the README says', () => {
  it('step 1: builds the image and copies the configuration and the wait script into the project', async () => {
    const [step1] = blocks('sh');
    const lines = step1!
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter(Boolean);
    expect(lines[0]).toMatch(/^git clone \S.* ~\/certkeeper$/); // here: the symlink made above
    expect(lines[1]).toBe('cd ~/certkeeper && docker build -f docker/Dockerfile -t certkeeper:local .');
    // The build, offline (PREBUILT=1 with this checkout's dist and dependencies), from the same Dockerfile.
    await buildCertkeeperImage(dockerd, { tag: 'certkeeper:local' });
    // The rest as written, in the clone (where the `cd` of the line before left the user).
    for (const line of lines.slice(2)) await sh(line, join(home, 'certkeeper'));
    expect(await fs.readFile(join(project, 'certkeeper/certkeeper.yml'), 'utf8')).toBe(
      await fs.readFile(join(REPO, 'docker/certkeeper.yml'), 'utf8'),
    );
    expect((await fs.stat(join(project, 'certkeeper/05-wait-for-certificates.sh'))).mode & 0o111).toBe(0o111);
  }, 240_000);

  it('steps 4 and 5: the edited compose file is valid and mounts what step 1 copied', async () => {
    const doc = parse(await fs.readFile(join(project, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, Record<string, unknown>>;
    };
    // Step 4: the certbot service replaced by the README's certkeeper service.
    const [snippet] = blocks('yaml');
    delete doc.services.certbot;
    doc.services.certkeeper = (parse(snippet!) as { certkeeper: Record<string, unknown> }).certkeeper;
    // Step 5, in the nginx service: no reload loop, the label, the wait script and CERTKEEPER_CERTS.
    const nginx = doc.services.nginx!;
    delete nginx.command;
    const label = /add the label `([^`:]+): ([^`]+)`/.exec(section)!;
    nginx.labels = { [label[1]!]: label[2]! };
    const volume = /add the volume `- ([^`]+05-wait-for-certificates\.sh[^`]*)`/.exec(section)![1]!;
    (nginx.volumes as string[]).push(volume);
    const env = /environment variable `CERTKEEPER_CERTS: "([^"]+)"`/.exec(section)![1]!;
    nginx.environment = { CERTKEEPER_CERTS: env };
    await fs.writeFile(join(project, 'docker-compose.yml'), stringify(doc));

    const cfg = await composeConfig();
    const ck = cfg.services.certkeeper!;
    expect(ck.image).toBe('certkeeper:local');
    expect(cfg.services.certbot).toBeUndefined();
    expect(cfg.services.nginx!.labels).toEqual({ 'certkeeper.reload': 'nginx' });
    expect(cfg.services.nginx!.command).toBeUndefined();
    // Every host path the two services mount exists (what step 1 copied, the certbot folders).
    for (const b of [...binds(ck), ...binds(cfg.services.nginx!)]) {
      if (b.source.startsWith(project)) await expect(fs.stat(b.source), b.source).resolves.toBeTruthy();
    }
    // docker/certkeeper.yml finds nginx by the label step 5 adds.
    const yml = await fs.readFile(join(project, 'certkeeper/certkeeper.yml'), 'utf8');
    expect(yml).toContain(`docker: { label: "${label[1]}=${label[2]}" }`);
    // nginx's wait script sees the adopted certificate at once.
    const wait = spawn('/bin/sh', [join(project, 'certkeeper/05-wait-for-certificates.sh')], {
      env: {
        PATH: '/usr/bin:/bin',
        CERTKEEPER_CERTS: env,
        CERTKEEPER_LIVE_DIR: join(project, 'data/certbot/conf/live'),
      },
    });
    expect(await new Promise((r) => wait.on('close', r))).toBe(0);
  });

  it('step 6: `certkeeper status` in the image shows the adopted certificate, valid and not due; nothing changed', async () => {
    const cfg = await composeConfig();
    const ck = cfg.services.certkeeper!;
    const args = ['run', '--rm', '--pull', 'never', '--network', 'host', '--user', ck.user ?? '0:0'];
    for (const [k, v] of Object.entries(ck.environment ?? {})) args.push('-e', `${k}=${v}`);
    for (const b of binds(ck)) {
      const source = b.source === '/var/run/docker.sock' ? dockerd.socketPath : b.source;
      args.push('-v', `${source}:${b.target}${b.ro ? ':ro' : ''}`);
    }
    const before = await fs.readlink(join(project, 'data/certbot/conf/live', DOMAIN, 'cert.pem'));
    const out = await dockerd.cli([...args, 'certkeeper:local', 'status'], { timeoutMs: 60_000 });
    const row = out.split('\n').find((l) => l.startsWith(`${DOMAIN} `));
    expect(row, out).toBeDefined();
    expect(row).toMatch(/\bvalid\b/);
    expect(row).not.toMatch(/placeholder|missing|expired/);
    const json = JSON.parse(
      await dockerd.cli([...args, 'certkeeper:local', 'status', '--json'], { timeoutMs: 60_000 }),
    );
    const cert = (Array.isArray(json) ? json : json.certificates).find(
      (c: { name: string }) => c.name === DOMAIN,
    );
    expect(cert).toMatchObject({ name: DOMAIN, serial, validity: 'valid' });
    expect(cert.plan?.due ?? false).toBe(false);
    // status adopts nothing on disk: certbot's symlinks are as they were.
    expect(await fs.readlink(join(project, 'data/certbot/conf/live', DOMAIN, 'cert.pem'))).toBe(before);
  }, 120_000);
});
