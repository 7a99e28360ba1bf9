import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CertkeeperError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { sleep } from '../platform/sleep.js';
import type { Lock, Locker, LockHolderInfo } from './types.js';

interface LockFile extends LockHolderInfo {
  token: string;
}

export interface FileLockerOptions {
  logger?: Logger;
  /** A holder on another host counts as gone after this long without a heartbeat (default 60 s). */
  staleMs?: number;
  /** Heartbeat and loss check interval (default 10 s). */
  refreshMs?: number;
  /** How often lock() looks again while waiting (default 250 ms). */
  pollMs?: number;
}

/** Linux: boot id + start time in clock ticks (survives nothing but the process itself); elsewhere undefined. */
export function processStartedAt(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields[19];
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return ticks ? `${boot}:${ticks}` : undefined;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function describeHolder(h: LockHolderInfo | undefined): string {
  if (!h) return 'another certkeeper process';
  const since = h.since ? `, since ${h.since}` : '';
  return `certkeeper pid ${h.pid} on ${h.host}${h.node ? ` (node ${h.node})` : ''}${since}`;
}

/**
 * Per-certificate locks as files in `<storage>/locks/`, created atomically with their holder inside (host, pid,
 * process start time). A holder on this host that no longer runs (kill -9, OOM, container restart, a reused pid)
 * is taken over at once; a holder on another host (a second container on the same volume) keeps its lock alive
 * with a heartbeat and is taken over after `staleMs` without one. The holder checks every `refreshMs` that the
 * file is still its own; if not, `lost` aborts and it must stop before writing.
 */
export class FileLocker implements Locker {
  private readonly host = hostname();
  private readonly startedAt = processStartedAt(process.pid);
  private readonly logger: Logger;
  private readonly staleMs: number;
  private readonly refreshMs: number;
  private readonly pollMs: number;

  constructor(
    readonly dir: string,
    opts: FileLockerOptions = {},
  ) {
    this.logger = opts.logger ?? silentLogger;
    this.staleMs = opts.staleMs ?? 60_000;
    this.refreshMs = opts.refreshMs ?? 10_000;
    this.pollMs = opts.pollMs ?? 250;
  }

  private path(name: string): string {
    return join(this.dir, `${name}.lock.json`);
  }

  async holder(name: string): Promise<LockHolderInfo | undefined> {
    const f = await this.read(name);
    if (!f?.info) return undefined;
    const { token: _t, ...info } = f.info;
    return info;
  }

  async tryLock(name: string): Promise<Lock | undefined> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o755 });
    const me: LockFile = {
      host: this.host,
      pid: process.pid,
      ...(this.startedAt && { startedAt: this.startedAt }),
      since: new Date().toISOString(),
      token: randomBytes(12).toString('hex'),
    };
    const body = `${JSON.stringify(me)}\n`;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (await this.createExclusive(name, body)) return this.held(name, me.token);
      const cur = await this.read(name);
      if (!cur) continue; // released meanwhile
      if (this.alive(cur.info, cur.mtimeMs)) return undefined;
      if (!(await this.takeOver(name, cur.raw))) return undefined;
      this.logger.warn(
        {
          event: 'lock.taken_over',
          cert: name,
          holder: cur.info && { host: cur.info.host, pid: cur.info.pid },
        },
        `${name}: took over the lock of ${describeHolder(cur.info)}, which no longer runs`,
      );
    }
    return undefined;
  }

  async lock(name: string, opts: { waitMs: number; signal?: AbortSignal }): Promise<Lock> {
    const deadline = Date.now() + opts.waitMs;
    let logged = false;
    for (;;) {
      const l = await this.tryLock(name);
      if (l) return l;
      const holder = await this.holder(name);
      if (Date.now() >= deadline || opts.signal?.aborted) throw lockedError(name, holder, opts.waitMs);
      if (!logged) {
        logged = true;
        this.logger.info(
          { event: 'lock.waiting', cert: name, holder, waitMs: opts.waitMs },
          `${name}: waiting for ${describeHolder(holder)} (up to ${Math.round(opts.waitMs / 1000)} s)`,
        );
      }
      await sleep(Math.min(this.pollMs, Math.max(1, deadline - Date.now())), opts.signal).catch(() => {});
    }
  }

  private alive(info: LockFile | undefined, mtimeMs: number): boolean {
    if (!info || typeof info.pid !== 'number' || typeof info.host !== 'string') {
      // Unreadable content: only its age can tell.
      return Date.now() - mtimeMs < this.staleMs;
    }
    if (info.host !== this.host) return Date.now() - mtimeMs < this.staleMs;
    if (!pidAlive(info.pid)) return false;
    // The pid runs, but is it the same process? (pids are reused, and a restarted container starts at pid 1 again)
    if (info.startedAt) {
      const now = processStartedAt(info.pid);
      if (now !== undefined && now !== info.startedAt) return false;
    }
    return true;
  }

  private async createExclusive(name: string, body: string): Promise<boolean> {
    const file = this.path(name);
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await fs.writeFile(tmp, body, { mode: 0o644 });
    try {
      await fs.link(tmp, file); // atomic: the lock appears with its holder inside, or not at all
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  private async read(
    name: string,
  ): Promise<{ raw: string; info: LockFile | undefined; mtimeMs: number } | undefined> {
    const file = this.path(name);
    try {
      const [raw, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
      let info: LockFile | undefined;
      try {
        info = JSON.parse(raw) as LockFile;
      } catch {
        info = undefined;
      }
      return { raw, info, mtimeMs: st.mtimeMs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Removes a dead holder's lock file, exactly once among competing takers: a short-lived `.takeover` folder
   * (mkdir is exclusive) guards the check-and-remove, so two takers never both remove a fresh lock.
   */
  private async takeOver(name: string, staleRaw: string): Promise<boolean> {
    const guard = `${this.path(name)}.takeover`;
    try {
      await fs.mkdir(guard);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await fs.stat(guard).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 10_000) await fs.rm(guard, { recursive: true, force: true });
      return false;
    }
    try {
      const cur = await this.read(name);
      if (cur && cur.raw === staleRaw) await fs.rm(this.path(name), { force: true });
      return true;
    } finally {
      await fs.rm(guard, { recursive: true, force: true });
    }
  }

  private held(name: string, token: string): Lock {
    const ac = new AbortController();
    const file = this.path(name);
    const check = async () => {
      const cur = await this.read(name).catch(() => undefined);
      if (cur?.info?.token !== token) {
        if (!ac.signal.aborted) {
          this.logger.error(
            {
              event: 'lock.lost',
              cert: name,
              holder: cur?.info && { host: cur.info.host, pid: cur.info.pid },
            },
            `${name}: lost the lock (${cur?.info ? `now held by ${describeHolder(cur.info)}` : 'its file was removed'}); stopping before writing anything`,
          );
          ac.abort(
            new CertkeeperError('lock', 'the certificate lock was lost while renewing', {
              cert: name,
              code: 'CK_ERR_LOCK_LOST',
              hint: 'something removed or took over locks/<name>.lock.json; make sure only certkeeper manages the storage folder, then run certkeeper renew again',
            }),
          );
        }
        return;
      }
      const t = new Date();
      await fs.utimes(file, t, t).catch(() => {});
    };
    const timer = setInterval(() => void check(), this.refreshMs);
    timer.unref();
    let released = false;
    return {
      lost: ac.signal,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        const cur = await this.read(name).catch(() => undefined);
        if (cur?.info?.token === token) await fs.rm(file, { force: true });
      },
    };
  }
}

export function lockedError(
  name: string,
  holder: LockHolderInfo | undefined,
  waitedMs: number,
): CertkeeperError {
  return new CertkeeperError(
    'lock',
    `${describeHolder(holder)} is renewing this certificate right now${waitedMs > 0 ? ` (waited ${Math.round(waitedMs / 1000)} s)` : ''}`,
    {
      cert: name,
      code: 'CK_ERR_LOCKED',
      hint: holder
        ? `let it finish; if it hangs, stop it (kill ${holder.pid} on ${holder.host}). A holder that died is taken over at once`
        : 'let it finish; a holder that died is taken over at once',
    },
  );
}
