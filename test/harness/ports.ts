import { createServer, Socket } from 'node:net';

/** Listens on 127.0.0.1:port (0: the kernel picks), closes, and gives the port; rejects when it is taken. */
function tryPort(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not read the port of a listening socket'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Below Linux's ephemeral range (32768-60999): ports the kernel never hands to outgoing connections. */
const LOW = 20_000;
const HIGH = 32_767;

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Taken below the ephemeral range: a port the kernel picked for
 * `listen(0)` can be given to another process's outgoing connection before the server meant for it binds (nginx in
 * the private dockerd once failed with EADDRINUSE that way while other test files were connecting to Pebble).
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    try {
      return await tryPort(port);
    } catch {
      // taken: try another
    }
  }
  return tryPort(0);
}

/** Distinct free ports (asked for together so one call does not hand out the same port twice). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; ports.size < n && i < n * 20; i++) ports.add(await freePort());
  if (ports.size < n) throw new Error(`could not find ${n} distinct free ports on 127.0.0.1`);
  return [...ports];
}

/** True when something accepts TCP connections on host:port (one attempt, bounded by timeoutMs). */
export function isListening(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.connect(port, host);
  });
}

/** Polls `check` up to `attempts` times, `intervalMs` apart; resolves true as soon as it passes. */
export async function pollUntil(
  check: () => Promise<boolean> | boolean,
  {
    attempts = 100,
    intervalMs = 50,
    abort,
  }: { attempts?: number; intervalMs?: number; abort?: () => boolean } = {},
): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (abort?.()) return false;
    try {
      if (await check()) return true;
    } catch {
      // not ready yet
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}
