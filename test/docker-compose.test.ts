/**
 * docker-compose.yml is accepted by Compose (`docker compose config`, or Debian's docker-compose 1.29) and wires
 * what docker/certkeeper.yml and nginx/templates/ expect. No daemon needed.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfigText } from '../src/config/load.js';
import { requireBinaries } from './harness/env.js';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..');

/** Compose v2 plugin when present, else Debian's docker-compose (apt: docker-compose). */
async function composeCommand(): Promise<string[]> {
  const docker = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  try {
    await run(docker, ['compose', 'version'], { timeout: 10_000 });
    return [docker, 'compose'];
  } catch {
    requireBinaries('/usr/bin/docker-compose');
    return ['/usr/bin/docker-compose'];
  }
}

async function composeConfig(
  env: Record<string, string>,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const [bin, ...pre] = await composeCommand();
  try {
    const { stdout, stderr } = await run(bin!, [...pre, '-f', join(REPO, 'docker-compose.yml'), 'config'], {
      cwd: REPO,
      timeout: 30_000,
      // Only what compose needs: no DOCKER_HOST, no credentials from the environment.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    });
    return { ok: true, stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

interface ComposeService {
  image?: string;
  labels?: Record<string, string>;
  volumes?: (string | { source: string; target: string; read_only?: boolean })[];
  environment?: Record<string, string>;
  depends_on?: unknown;
  ports?: unknown[];
}

function mounts(s: ComposeService): Map<string, string> {
  const m = new Map<string, string>();
  for (const v of s.volumes ?? []) {
    if (typeof v === 'string') {
      const [src, dst] = v.split(':');
      m.set(dst!, src!);
    } else m.set(v.target, v.source);
  }
  return m;
}

describe('docker-compose.yml', () => {
  it('is accepted by compose and wires nginx and certkeeper together', async () => {
    const r = await composeConfig({ DOMAIN: 'certkeeper.test', ACME_EMAIL: 'ops@certkeeper.test' });
    expect(r.stderr, r.stderr).not.toMatch(/error/i);
    expect(r.ok).toBe(true);
    const doc = parse(r.stdout) as { services: Record<string, ComposeService> };
    const nginx = doc.services.nginx!;
    const ck = doc.services.certkeeper!;
    expect(nginx.image).toMatch(/^nginx:/); // the official image
    // Shared certificate and webroot folders: certkeeper writes, nginx reads.
    const nm = mounts(nginx);
    const cm = mounts(ck);
    expect(nm.get('/etc/letsencrypt')).toBe(cm.get('/etc/letsencrypt'));
    expect(nm.get('/var/www/certbot')).toBe(cm.get('/var/www/certbot'));
    expect(nm.get('/etc/nginx/templates')).toBe(join(REPO, 'nginx/templates'));
    // The default reload path is the Docker socket.
    expect(cm.get('/var/run/docker.sock')).toBe('/var/run/docker.sock');
    // Docker's default 10 s before SIGKILL is shorter than certkeeper's 30 s grace for a running renewal.
    const grace = String((ck as { stop_grace_period?: unknown }).stop_grace_period ?? '');
    expect(grace).toMatch(/^\d+s$/);
    expect(Number.parseInt(grace, 10)).toBeGreaterThan(30);
    // The nginx template's variables are set.
    expect(nginx.environment).toMatchObject({
      DOMAINS: 'certkeeper.test www.certkeeper.test',
      CERT_NAME: 'certkeeper.test',
    });

    // certkeeper.yml finds the container by the label compose puts on it, and its paths are the mounted ones.
    const mounted = cm.get('/etc/certkeeper/certkeeper.yml')!;
    const cfg = parseConfigText(await fs.readFile(mounted, 'utf8'), {
      env: { DOMAIN: 'certkeeper.test', ACME_EMAIL: 'ops@certkeeper.test' },
    });
    const cert = cfg.certificates[0]!;
    expect(cfg.storage.path).toBe('/etc/letsencrypt');
    expect(cert.challenge).toMatchObject({ type: 'http-01', webroot: '/var/www/certbot' });
    const d = cert.deploy[0]!;
    if (d.type !== 'nginx' || !d.docker || !('label' in d.docker))
      throw new Error('expected docker: {label} in docker/certkeeper.yml');
    const [key, value] = d.docker.label.split('=');
    expect(nginx.labels?.[key!]).toBe(value);
    expect(d.verify.address).toBe('nginx:443');
  });

  it('says which variable to set when .env is missing', async () => {
    const r = await composeConfig({});
    expect(r.ok).toBe(false);
    expect(`${r.stderr}${r.stdout}`).toMatch(/set DOMAIN in \.env|set ACME_EMAIL in \.env/);
  });
});
