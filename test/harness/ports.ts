import { createServer, Socket } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (bind :0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
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
