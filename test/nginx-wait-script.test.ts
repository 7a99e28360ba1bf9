/**
 * nginx/docker-entrypoint.d/05-wait-for-certificates.sh, which the compose files mount into the official nginx
 * image's /docker-entrypoint.d/: run here with /bin/sh (dash, as in the Debian-based image) against a temp folder.
 * In a container, in nginx's place, it is exercised by test/docker-socketless.test.ts.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const SCRIPT = resolve(import.meta.dirname, '..', 'nginx/docker-entrypoint.d/05-wait-for-certificates.sh');
let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-wait-'));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

function runScript(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((r) => {
    const child = spawn('/bin/sh', [SCRIPT], {
      env: { PATH: '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      r({ code, out });
    });
  });
}

describe('the nginx entrypoint wait for the placeholder', () => {
  it('is executable (the official entrypoint skips scripts that are not)', async () => {
    expect((await fs.stat(SCRIPT)).mode & 0o111).toBe(0o111);
  });

  it('waits until fullchain.pem and privkey.pem exist, then lets nginx start', async () => {
    const live = join(work, 'live');
    const started = runScript({
      CERT_NAME: 'example.com',
      CERTKEEPER_LIVE_DIR: live,
      CERTKEEPER_WAIT_SECONDS: '15',
    });
    await new Promise((r) => setTimeout(r, 600));
    await fs.mkdir(join(live, 'example.com'), { recursive: true });
    await fs.writeFile(join(live, 'example.com', 'fullchain.pem'), 'chain');
    await new Promise((r) => setTimeout(r, 400));
    await fs.writeFile(join(live, 'example.com', 'privkey.pem'), 'key');
    const r = await started;
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(
      /waiting for .*live\/example\.com\/fullchain\.pem \(certkeeper writes a placeholder/,
    );
    expect(r.out).toMatch(/has the certificates nginx needs; starting nginx/);
  });

  it('returns at once when the certificates are there, and gives up with the reason after the wait', async () => {
    const ready = await runScript({ CERT_NAME: 'example.com', CERTKEEPER_LIVE_DIR: join(work, 'live') });
    expect(ready).toEqual({ code: 0, out: '' });
    const missing = await runScript({
      CERTKEEPER_CERTS: 'example.com other.example.com',
      CERTKEEPER_LIVE_DIR: join(work, 'live'),
      CERTKEEPER_WAIT_SECONDS: '1',
    });
    expect(missing.code).toBe(1);
    expect(missing.out).toMatch(
      /other\.example\.com\/fullchain\.pem still missing after 1s; is certkeeper running\?/,
    );
  });

  it("both compose files mount it into nginx's /docker-entrypoint.d/", async () => {
    for (const f of ['docker-compose.yml', 'docker-compose.socketless.yml']) {
      const doc = parse(await fs.readFile(resolve(import.meta.dirname, '..', f), 'utf8')) as {
        services: { nginx: { volumes: string[] } };
      };
      expect(doc.services.nginx.volumes, f).toContain(
        './nginx/docker-entrypoint.d/05-wait-for-certificates.sh:/docker-entrypoint.d/05-wait-for-certificates.sh:ro',
      );
    }
  });
});
