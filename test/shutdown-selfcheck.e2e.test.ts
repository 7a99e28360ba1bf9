/**
 * SIGTERM while the HTTP-01 self-check waits on a server that never answers: the abort must reach the probe, the
 * challenge file must be removed and the pending authorization deactivated before the process exits — not the
 * process killed with the file left behind after grace + 15 s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type PebbleHandle, pollUntil, startPebble } from './harness/index.js';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
let pebble: PebbleHandle;
let work: string;
let slow: Server;
const sockets: Socket[] = [];
let child: ChildProcess | undefined;

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-sigterm-'));
  pebble = await startPebble();
  slow = createServer((s) => sockets.push(s)); // accepts, never answers
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  if (child?.exitCode === null) child.kill('SIGKILL');
  for (const s of sockets) s.destroy();
  await new Promise((r) => slow?.close(r));
  await pebble?.stop();
  await fs.rm(work, { recursive: true, force: true });
});

describe('SIGTERM during a slow self-check', () => {
  it('aborts the probe, cleans up the challenge and exits cleanly', async () => {
    const webroot = join(work, 'www');
    await fs.mkdir(webroot);
    const slowPort = (slow.address() as { port: number }).port;
    const config = join(work, 'certkeeper.yml');
    await fs.writeFile(
      config,
      `acme: { directoryUrl: "${pebble.directoryUrl}", caBundle: "${pebble.caBundlePath}" }
storage: { path: ${join(work, 'le')} }
server: { listen: "127.0.0.1:${await freePort()}" }
selfCheck: { httpPort: ${slowPort}, resolvers: ["${pebble.dnsServer}"], timeoutSeconds: 300 }
certificates:
  - { name: slow, domains: [slow.certkeeper.test], challenge: { type: http-01, webroot: ${webroot} } }
`,
    );
    let out = '';
    child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', '-c', config, '--grace', '1'], {
      env: { ...process.env, LOG_FORMAT: 'json', LOG_LEVEL: 'debug' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));

    // the self-check is connected and waiting; the challenge file is in the webroot
    const waiting = await pollUntil(async () => sockets.length > 0, { attempts: 600, intervalMs: 100 });
    expect(waiting, out).toBe(true);
    const chdir = join(webroot, '.well-known', 'acme-challenge');
    expect(await fs.readdir(chdir)).toHaveLength(1);

    child.kill('SIGTERM');
    // bounded wait (far below the 300 s probe timeout); the assertions are about what was left behind
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 40_000)),
    ]);
    expect(code, out).toBe(0);
    expect(await fs.readdir(chdir)).toEqual([]);
    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      lines.some((l) => l.event === 'daemon.stopped' && l.clean === true),
      out,
    ).toBe(true);
    expect(lines.some((l) => l.event === 'challenge.cleanup_failed')).toBe(false);
  });
});
