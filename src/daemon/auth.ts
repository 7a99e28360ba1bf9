import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';

/**
 * The API token: server.token, else $CERTKEEPER_TOKEN, else the first line of server.tokenFile.
 * The shell (CLI) passes its environment in; the token is never logged.
 */
export async function resolveToken(
  server: Pick<Config['server'], 'token' | 'tokenFile'> & Partial<Config['server']>,
  env: Record<string, string | undefined>,
): Promise<string | undefined> {
  if (server.token) return server.token;
  const fromEnv = env.CERTKEEPER_TOKEN?.trim();
  if (fromEnv) return checkLength(fromEnv, 'CERTKEEPER_TOKEN');
  if (!server.tokenFile) return undefined;
  let text: string;
  try {
    text = await readFile(server.tokenFile, 'utf8');
  } catch (err) {
    throw new CertkeeperError(
      'config',
      `server.tokenFile: cannot read ${server.tokenFile}: ${(err as Error).message}`,
      {
        field: 'server.tokenFile',
        hint: 'create the file with one line holding the token (e.g. openssl rand -hex 32 > token) and make it readable by certkeeper',
      },
    );
  }
  return checkLength(text.split('\n')[0]!.trim(), 'server.tokenFile');
}

function checkLength(token: string, field: string): string {
  if (token.length < 16) {
    throw new CertkeeperError('config', `${field}: the API token is shorter than 16 characters`, {
      field,
      hint: 'use a long random token, e.g. the output of `openssl rand -hex 32`',
    });
  }
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new CertkeeperError(
      'config',
      `${field}: the API token has spaces or characters a bearer header cannot carry, so no request could match it`,
      { field, hint: 'use a token without spaces, e.g. the output of `openssl rand -hex 32`' },
    );
  }
  return token;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time check of an Authorization header against the token (equal-length SHA-256 digests). */
export function checkBearer(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  const given = m?.[1] ?? '';
  const ok = timingSafeEqual(digest(given), digest(token));
  return ok && given.length > 0;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** "127.0.0.1:8080", "[::1]:8080", "localhost:8080", ":8080" (all interfaces), "0.0.0.0:8080". */
export function parseListen(listen: string, field = 'server.listen'): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen.trim());
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new CertkeeperError('config', `${field}: "${listen}" is not host:port`, {
      field,
      hint: 'write it as 127.0.0.1:8080, [::1]:8080 or 0.0.0.0:8080 (the last needs a token)',
    });
  }
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '::ffff:127.0.0.1';
}

/** Refuses to expose the API beyond this machine without a token. */
export function assertListenAllowed(addr: ListenAddress, token: string | undefined): void {
  if (token || isLoopback(addr.host)) return;
  throw new CertkeeperError(
    'config',
    `server.listen: refusing to listen on ${addr.host}:${addr.port} (reachable from other machines) without an API token`,
    {
      field: 'server.listen',
      code: 'CK_ERR_NO_TOKEN',
      hint: 'set server.tokenFile (or CERTKEEPER_TOKEN) to a long random token, or listen on 127.0.0.1',
    },
  );
}
