/**
 * YAML problems through the real CLI: a named configuration error and exit 2 — never "unexpected error ... please
 * report it" — for `check-config` (loads in process) and `run` (loads in a worker thread).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let work: string;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { ...process.env, LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function file(name: string, text: string): Promise<string> {
  const p = join(work, name);
  await fs.writeFile(p, text);
  return p;
}

const head = 'acme: { directoryUrl: "https://127.0.0.1:1/dir" }\nstorage: { path: ./le }\n';

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-config-cli-'));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe('configuration errors through the CLI', () => {
  it('an alias bomb is a configuration error, exit 2, for check-config and run', async () => {
    const levels = ['x-a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const [prev, cur] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
      levels.push(`x-${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const bomb = await file('bomb.yml', `${head}${levels.join('\n')}\n`);
    for (const args of [['check-config'], ['run', '--no-check-at-start']]) {
      const r = await cli(['--config', bomb, ...args]);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/bomb\.yml: the YAML aliases expand to more than 10,000 copies .*alias bomb/);
      expect(r.stderr).not.toMatch(/unexpected error|please report/);
    }
  }, 60_000);

  it('an unquoted wildcard says to quote it, with line and column, exit 2', async () => {
    const f = await file(
      'wild.yml',
      `${head}certificates:\n  - { name: w, domains: [*.example.com], challenge: { type: dns-01, provider: exec, command: [/bin/true] } }\n`,
    );
    const r = await cli(['--config', f, 'check-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /wild\.yml: line 4, column \d+: \*\.example\.com is read as a YAML alias.*quote wildcard names/,
    );
    expect(r.stderr).toMatch(/fix: in YAML a value starting with \* is an alias/);
    expect(r.stderr).not.toMatch(/unexpected error|please report/);
  });

  it('101 certificates sharing one anchor load', async () => {
    let text = `${head}certificates:\n  - { name: c0, domains: [c0.example.com], challenge: &webroot { type: http-01, webroot: ./www } }\n`;
    for (let i = 1; i <= 101; i++)
      text += `  - { name: c${i}, domains: [c${i}.example.com], challenge: *webroot }\n`;
    const r = await cli(['--config', await file('many.yml', text), 'check-config']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid, 102 certificate\(s\)/);
  });
});
