import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CertkeeperError } from '../errors.js';
import type { ClusterConfig } from './schema.js';

/** The cluster's AES-256-GCM key. Private keys never reach PostgreSQL unencrypted. */
export interface ClusterKey {
  encrypt(plain: string, aad: string): Buffer;
  decrypt(sealed: Buffer, aad: string): string;
}

const KEY_HINT = 'create one with `openssl rand -base64 32`, give every node the same one';

/** Parses 32 bytes given as 64 hex digits or base64; anything else is a config error naming `field`. */
export function parseClusterKey(text: string, field: string): ClusterKey {
  const t = text.trim();
  let raw: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) raw = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{42,44}={0,2}$/.test(t)) raw = Buffer.from(t, 'base64');
  if (raw?.length !== 32) {
    throw new CertkeeperError(
      'config',
      `${field}: the cluster key must be 32 bytes (base64 or 64 hex digits)`,
      {
        field,
        code: 'CK_ERR_CLUSTER_KEY',
        hint: KEY_HINT,
      },
    );
  }
  return keyFromBytes(raw);
}

export function keyFromBytes(raw: Buffer): ClusterKey {
  const key = Buffer.from(raw);
  return {
    // Layout: 12-byte IV | 16-byte tag | ciphertext. The AAD binds the ciphertext to its row (name + version).
    encrypt(plain, aad) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.from(aad));
      const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return Buffer.concat([iv, c.getAuthTag(), body]);
    },
    decrypt(sealed, aad) {
      try {
        const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
        d.setAAD(Buffer.from(aad));
        d.setAuthTag(sealed.subarray(12, 28));
        return Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString('utf8');
      } catch {
        throw new CertkeeperError('store', `cannot decrypt the private key of ${aad} from PostgreSQL`, {
          code: 'CK_ERR_CLUSTER_KEY',
          hint: 'every node needs the same cluster key (cluster.keyFile / cluster.keyEnv) as the node that stored it',
        });
      }
    },
  };
}

/** Reads the key the config names. `env` is injected by the CLI/daemon wiring. */
export async function loadClusterKey(
  cluster: Pick<ClusterConfig, 'keyFile' | 'keyEnv'>,
  env: Record<string, string | undefined>,
): Promise<ClusterKey> {
  if (cluster.keyFile) {
    let text: string;
    try {
      text = await readFile(cluster.keyFile, 'utf8');
    } catch (err) {
      throw new CertkeeperError(
        'config',
        `cluster.keyFile: cannot read ${cluster.keyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { field: 'cluster.keyFile', code: 'CK_ERR_CLUSTER_KEY', hint: KEY_HINT },
      );
    }
    return parseClusterKey(text, 'cluster.keyFile');
  }
  if (cluster.keyEnv) {
    const v = env[cluster.keyEnv];
    if (!v) {
      throw new CertkeeperError(
        'config',
        `cluster.keyEnv: the environment variable ${cluster.keyEnv} is not set`,
        {
          field: 'cluster.keyEnv',
          code: 'CK_ERR_CLUSTER_KEY',
          hint: `set ${cluster.keyEnv}; ${KEY_HINT}`,
        },
      );
    }
    return parseClusterKey(v, 'cluster.keyEnv');
  }
  throw new CertkeeperError('config', 'cluster: no key for private keys at rest', {
    field: 'cluster.keyFile',
    code: 'CK_ERR_CLUSTER_KEY',
    hint: `set cluster.keyFile or cluster.keyEnv; ${KEY_HINT}`,
  });
}
