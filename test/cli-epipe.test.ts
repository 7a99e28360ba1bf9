/**
 * `certkeeper status | head`: the reader closes the pipe after a few lines; certkeeper stops quietly (exit 0, nothing
 * on stderr) instead of crashing on EPIPE with "unhandled 'error' event".
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let work: string;
let config: string;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-epipe-'));
  config = join(work, 'certkeeper.json');
  // 2,000 certificates of three names: the table (~170 bytes a row) is several times a pipe's 64 KiB buffer
  const certificates = Array.from({ length: 2000 }, (_, i) => ({
    name: `site-${i}`,
    domains: [`site-${i}.example.test`, `www.site-${i}.example.test`, `static.site-${i}.example.test`],
    challenge: { type: 'http-01', webroot: join(work, 'www') },
  }));
  await fs.writeFile(
    config,
    JSON.stringify({
      acme: { directoryUrl: 'https://127.0.0.1:1/dir' },
      storage: { path: join(work, 'le') },
      certificates,
    }),
  );
});
afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** Runs `certkeeper <args>` with stdout piped into a reader that keeps one chunk and then closes the pipe. */
function closedEarly(
  args: string[],
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '-c', config, ...args], {
      env: { ...process.env, LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout.once('data', () => child.stdout.destroy());
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

describe('stdout closed by the reader', () => {
  it.each([[['status']], [['status', '--json']]])(
    'certkeeper %j | head exits quietly',
    async (args) => {
      const r = await closedEarly(args);
      expect(r.stderr).not.toContain('EPIPE');
      expect(r.stderr).toBe('');
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
    },
    40_000,
  );
});
