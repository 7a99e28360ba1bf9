import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { CertkeeperError } from '../errors.js';

/**
 * How a write reaches the disk. `durable` (the default): the file's data is fsynced before the rename, and the
 * folder after it, so a power cut leaves the old file or the complete new one. `syncDir: false` leaves the folder's
 * fsync to the caller, who writes several files into one folder and syncs it once. `durable: false` skips both
 * (still atomic for readers: tmp + rename): for files whose loss in a power cut costs nothing but a re-write, such
 * as a placeholder that the next run makes again. `mkdir: false`: the caller knows the folder exists.
 */
export interface WriteOptions {
  durable?: boolean;
  syncDir?: boolean;
  mkdir?: boolean;
}

/**
 * Writes a file so that readers see either the old content or the new, never a part: tmp + fsync + rename. On any
 * failure the temp file is removed and a full, read-only or unwritable storage becomes a store error with the fix.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
  opts: WriteOptions = {},
): Promise<void> {
  const durable = opts.durable !== false;
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    // An explicit mode: with umask 000 the default 0777 would make the storage folders world-writable.
    if (opts.mkdir !== false) await fs.mkdir(dirname(path), { recursive: true, mode: 0o755 });
    const fh = await fs.open(
      tmp,
      constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW,
      mode,
    );
    try {
      await fh.writeFile(data);
      await fh.chmod(mode); // umask must not widen or narrow what we asked for
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw storageError(err, path);
  }
  if (durable && opts.syncDir !== false) await fsyncDir(dirname(path));
}

const STORAGE_HINTS: Record<string, (path: string) => string> = {
  ENOSPC: (p) =>
    `the file system holding ${p} is full: free space there (df -h ${dirname(p)}) or move storage.path to a larger volume`,
  EDQUOT: (p) => `the disk quota for ${dirname(p)} is used up: raise the quota or free space there`,
  EROFS: (p) =>
    `${dirname(p)} is on a read-only file system: mount storage.path read-write (in Docker: no ":ro" on the volume)`,
  EACCES: (p) =>
    `certkeeper may not write ${dirname(p)}: run it as the owner of storage.path (usually root) or fix the folder's owner and mode`,
  EPERM: (p) =>
    `certkeeper may not write ${dirname(p)}: run it as the owner of storage.path (usually root) or fix the folder's owner and mode`,
};

/** A write error of the storage as a CertkeeperError naming the path and the fix; anything else unchanged. */
export function storageError(err: unknown, path: string): unknown {
  if (err instanceof CertkeeperError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const hint = code ? STORAGE_HINTS[code] : undefined;
  if (!hint) return err;
  return new CertkeeperError('store', `cannot write ${path} (${code}); nothing live was changed`, {
    code: code === 'ENOSPC' || code === 'EDQUOT' ? 'CK_ERR_STORAGE_FULL' : 'CK_ERR_STORAGE_READ_ONLY',
    hint: hint(path),
    cause: err,
  });
}

/** Atomically points `path` (a symlink) at `target`, replacing what was there; `syncDir: false` as above. */
export async function symlinkAtomic(
  target: string,
  path: string,
  opts: { syncDir?: boolean } = {},
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.symlink(target, tmp);
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw storageError(err, path);
  }
  if (opts.syncDir !== false) await fsyncDir(dirname(path));
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; rename is still atomic there.
  } finally {
    await fh?.close();
  }
}

export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** True when something (a file, folder or link, even a dangling one) is at `p`. */
export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates `path` with `mode`, exclusively and without following a link at it (O_CREAT|O_EXCL|O_NOFOLLOW), then
 * sets the mode on the open file (umask neither widens nor narrows it), never by path. For folders others can
 * write (a webroot): a link planted there is never followed. With `replace`, whatever is at `path` (a stale file or
 * a planted link) is unlinked — unlink does not follow links — and the exclusive create tried once more.
 */
export async function writeFileNoFollow(
  path: string,
  data: string | Uint8Array,
  mode: number,
  opts: { replace?: boolean } = {},
): Promise<void> {
  const flags = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path, flags, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !opts.replace) throw err;
    await fs.unlink(path);
    fh = await fs.open(path, flags, mode);
  }
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

/**
 * Makes the folder `path` (its parent must exist) with `mode` set on the folder itself (not through umask), or
 * accepts an existing folder; a link or a file there is refused (code ELOOP / ENOTDIR).
 */
export async function ensureDirNoFollow(path: string, mode: number): Promise<void> {
  try {
    await fs.mkdir(path, { mode });
    const fh = await fs.open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      await fh.chmod(mode);
    } finally {
      await fh.close();
    }
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = await fs.lstat(path);
  if (st.isSymbolicLink()) throw Object.assign(new Error(`${path} is a symbolic link`), { code: 'ELOOP' });
  if (!st.isDirectory()) throw Object.assign(new Error(`${path} is not a folder`), { code: 'ENOTDIR' });
}

/** The real path of `root/rel` when it exists and resolves to exactly that place inside root's real path. */
export async function realpathInside(root: string, rel: string): Promise<string | undefined> {
  try {
    const [realRoot, real] = await Promise.all([fs.realpath(root), fs.realpath(join(root, rel))]);
    return real === join(realRoot, rel) ? real : undefined;
  } catch {
    return undefined;
  }
}
