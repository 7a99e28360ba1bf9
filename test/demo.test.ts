/**
 * `npm run demo` as a user redirects it (`npm run demo > demo.log`): it still works end to end, and its output
 * holds no terminal escape codes.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const DEMO = join(import.meta.dirname, '..', 'scripts', 'demo.ts');
let kept: string | undefined;

afterAll(async () => {
  if (kept) await fs.rm(kept, { recursive: true, force: true });
});

describe('the demo', () => {
  it('writes no ANSI escape codes into redirected output', async () => {
    const { LOG_FORMAT: _f, NO_COLOR: _n, ...env } = process.env;
    const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', DEMO], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
    });
    kept = /files kept in (\S+)/.exec(r.out)?.[1];
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.out).toContain('==> demo OK');
    expect(r.out).toMatch(/NAME +DOMAINS/); // the status table, from the CLI the demo runs
    expect(r.out).not.toContain('\x1b');
    expect(r.err).not.toContain('\x1b');
  }, 120_000);
});
