import * as z from 'zod';
import { isSafeFileName } from '../config/dns-name.js';

/**
 * `cluster:` — several hosts share one certificate through PostgreSQL. Absent: the local store is the only one
 * and nothing changes.
 */
export const clusterSchema = z
  .strictObject({
    postgres: z
      .strictObject({
        /** postgres://user:password@host:5432/db — may use ${ENV} substitution. */
        url: z.string().min(1).optional(),
        /** A file holding the URL (a Docker/Kubernetes secret), read at start. */
        urlFile: z.string().min(1).optional(),
      })
      .refine((p) => (p.url === undefined) !== (p.urlFile === undefined), {
        error: 'set exactly one of cluster.postgres.url or cluster.postgres.urlFile',
      }),
    /** This node's name in the cluster (status, locks, deploy reports). Default: the host name. */
    node: z
      .string()
      .refine(isSafeFileName, {
        error: 'use letters, digits, ".", "_" and "-" for cluster.node',
      })
      .optional(),
    /** File with the 32-byte AES-256-GCM key for private keys at rest (base64 or 64 hex digits). */
    keyFile: z.string().min(1).optional(),
    /** Name of the environment variable holding that key instead. */
    keyEnv: z
      .string()
      .regex(
        /^[A-Za-z_][A-Za-z0-9_]*$/,
        'expected an environment variable name such as CERTKEEPER_CLUSTER_KEY',
      )
      .optional(),
    /** host:port of every node's HTTP-01 listener: the self-check asks each one before the CA is asked. */
    selfCheckAddresses: z.array(z.string().min(1)).optional(),
    /** Seconds between the version compares that cover missed notifications. */
    syncIntervalSeconds: z.number().positive().default(30),
    /**
     * Seconds a lock holder may stay silent before PostgreSQL ends its session and with it the lock (the holder
     * sends a heartbeat every third of this). A paused holder loses the lock after this long.
     */
    lockLeaseSeconds: z.number().min(2).default(30),
  })
  .refine((c) => (c.keyFile === undefined) !== (c.keyEnv === undefined), {
    error:
      'set exactly one of cluster.keyFile or cluster.keyEnv: private keys in PostgreSQL are always encrypted (create a key with `openssl rand -base64 32`)',
  });

export type ClusterConfig = z.infer<typeof clusterSchema>;
