/**
 * Runs certbot and lego against the harness Pebble, HTTP-01 webroot, one single-name certificate per name, one after
 * another, so `npm run bench` can put certkeeper's per-certificate time beside theirs. Everything stays on loopback:
 * Pebble resolves every name to 127.0.0.1 through challtestsrv and validates on the port nginx serves the webroot on.
 */
import { spawn } from 'node:child_process';
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hasBinary } from '../test/harness/env.js';
import type { PebbleHandle } from '../test/harness/pebble.js';

export const CERTBOT_BIN = '/usr/bin/certbot';
export const LEGO_BIN = '/usr/bin/lego';

export interface CompareOptions {
  pebble: Pick<PebbleHandle, 'directoryUrl' | 'caBundlePath'>;
  /** Served by nginx at /.well-known/acme-challenge/ on pebble.httpPort. */
  webroot: string;
  names: string[];
  workDir: string;
  /** Per child process. Default 120 s. */
  timeoutMs?: number;
}

export interface CompareResult {
  tool: 'certbot' | 'lego';
  /** Wall-clock seconds for all names, including the account registration of the first run. */
  seconds: number;
  ok: number;
  failed: number;
  /** One line per failure: the name and the last lines the tool printed. */
  errors: string[];
  /** Seconds per name, in order (the first includes registering the account). */
  perName: { name: string; seconds: number; ok: boolean }[];
}

interface RunOutcome {
  code: number | null;
  output: string;
  timedOut: boolean;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunOutcome> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (b: Buffer) => {
      output += b.toString('utf8');
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}\n${err.message}`, timedOut });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

function tail(text: string, n = 5): string {
  return text.trimEnd().split('\n').slice(-n).join(' | ');
}

async function issueEach(
  tool: CompareResult['tool'],
  opts: CompareOptions,
  bin: string,
  argsFor: (name: string) => string[],
  env: NodeJS.ProcessEnv,
): Promise<CompareResult> {
  const logPath = join(opts.workDir, `${tool}.log`);
  const result: CompareResult = { tool, seconds: 0, ok: 0, failed: 0, errors: [], perName: [] };
  const t0 = process.hrtime.bigint();
  for (const name of opts.names) {
    const t = process.hrtime.bigint();
    const out = await run(bin, argsFor(name), env, opts.timeoutMs ?? 120_000);
    result.perName.push({ name, seconds: Number(process.hrtime.bigint() - t) / 1e9, ok: out.code === 0 });
    await appendFile(
      logPath,
      `=== ${name} (exit ${out.code}${out.timedOut ? ', timed out' : ''})\n${out.output}\n`,
    );
    if (out.code === 0) result.ok++;
    else {
      result.failed++;
      result.errors.push(`${name}: ${out.timedOut ? 'timed out; ' : ''}${tail(out.output)}`);
    }
  }
  result.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return result;
}

function baseEnv(workDir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/bin',
    HOME: workDir,
    LANG: 'C.UTF-8',
  };
}

/** certbot certonly --webroot for each name; undefined when certbot is not installed. */
export async function runCertbot(opts: CompareOptions): Promise<CompareResult | undefined> {
  if (!hasBinary(CERTBOT_BIN)) return undefined;
  const dir = join(opts.workDir, 'certbot');
  await mkdir(dir, { recursive: true });
  const env = { ...baseEnv(opts.workDir), REQUESTS_CA_BUNDLE: opts.pebble.caBundlePath };
  return issueEach(
    'certbot',
    opts,
    CERTBOT_BIN,
    (name) => [
      'certonly',
      '--non-interactive',
      '--agree-tos',
      '--register-unsafely-without-email',
      '--server',
      opts.pebble.directoryUrl,
      '--webroot',
      '-w',
      opts.webroot,
      '-d',
      name,
      '--config-dir',
      join(dir, 'config'),
      '--work-dir',
      join(dir, 'work'),
      '--logs-dir',
      join(dir, 'logs'),
    ],
    env,
  );
}

/** lego run --http --http.webroot for each name; undefined when lego is not installed. */
export async function runLego(opts: CompareOptions): Promise<CompareResult | undefined> {
  if (!hasBinary(LEGO_BIN)) return undefined;
  const dir = join(opts.workDir, 'lego');
  await mkdir(dir, { recursive: true });
  const env = { ...baseEnv(opts.workDir), LEGO_CA_CERTIFICATES: opts.pebble.caBundlePath };
  return issueEach(
    'lego',
    opts,
    LEGO_BIN,
    (name) => [
      '--server',
      opts.pebble.directoryUrl,
      '--accept-tos',
      '--email',
      'bench@example.com',
      '--http',
      '--http.webroot',
      opts.webroot,
      '--path',
      dir,
      '-d',
      name,
      'run',
    ],
    env,
  );
}
