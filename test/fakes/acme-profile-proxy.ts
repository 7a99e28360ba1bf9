/**
 * ACME profiles (draft-aaron-acme-profiles) in front of Pebble 2.4, which predates them. An HTTPS reverse proxy on
 * 127.0.0.1 that forwards every request to Pebble and:
 *   - GET <directory>: adds `meta.profiles` (name → description) to Pebble's directory (or leaves it without any,
 *     to play a CA that offers none);
 *   - POST <newOrder>: reads the `profile` of the JWS payload, records it, and answers an unknown profile itself
 *     with `urn:ietf:params:acme:error:invalidProfile` (as Let's Encrypt does) — such an order never reaches
 *     Pebble; a known one is forwarded, and the order object returned carries `profile` as a profile-aware CA's does;
 *   - optionally shortens the `expires` of the authorizations of orders under a given profile (Let's Encrypt's
 *     tlsserver and shortlived give an hour), so the authorization deadline can be tested in seconds;
 *   - can play a CA outage: while down, every connection is cut.
 *
 * Why forward the newOrder JWS unchanged instead of stripping `profile`: the payload is signed by the account key, and
 * a proxy cannot re-sign it. Stripping is not needed either: Pebble 2.4's NewOrder unmarshals the payload with
 * encoding/json into its acme.Order (no DisallowUnknownFields), so an extra `profile` field is ignored — checked in
 * Pebble v2.4.0's wfe/wfe.go. The proxy keeps the Host header, so Pebble builds every URL (directory, Location,
 * the JWS `url` it checks) for the proxy's address, and the client never talks to Pebble directly. Its HTTPS
 * certificate is Pebble's own listener certificate, so the harness's caBundle trusts both.
 */
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { PebbleHandle } from '../harness/pebble.js';

export const LETS_ENCRYPT_PROFILES: Record<string, string> = {
  classic: 'https://letsencrypt.org/docs/profiles#classic',
  tlsserver: 'https://letsencrypt.org/docs/profiles#tlsserver',
  shortlived: 'https://letsencrypt.org/docs/profiles#shortlived',
};

export interface NewOrderRecord {
  at: Date;
  profile?: string;
  identifiers: { type: string; value: string }[];
  /** true: refused here (invalidProfile), never forwarded to Pebble. */
  rejected: boolean;
}

export interface ProfileProxyOptions {
  pebble: PebbleHandle;
  /** meta.profiles to offer; null: a CA without profiles. Default: Let's Encrypt's three. */
  profiles?: Record<string, string> | null;
  /** For orders under these profiles, authorizations expire this many ms after the order was created. */
  authorizationLifetimeMs?: Record<string, number>;
}

export interface ProfileProxy {
  directoryUrl: string;
  /** Every newOrder seen, forwarded or not. */
  newOrders: NewOrderRecord[];
  /** Orders Pebble actually received (forwarded). */
  forwarded(): NewOrderRecord[];
  /** null: offer none. */
  setProfiles(profiles: Record<string, string> | null): void;
  /** Cut every connection until up() (a CA outage). */
  down(): void;
  up(): void;
  stop(): Promise<void>;
}

export async function startProfileProxy(opts: ProfileProxyOptions): Promise<ProfileProxy> {
  const upstream = new URL(opts.pebble.directoryUrl);
  const [cert, key, ca] = await Promise.all([
    readFile(join(opts.pebble.dir, 'pebble-https.pem'), 'utf8'),
    readFile(join(opts.pebble.dir, 'pebble-https.key'), 'utf8'),
    readFile(opts.pebble.caBundlePath, 'utf8'),
  ]);
  let profiles = opts.profiles === undefined ? LETS_ENCRYPT_PROFILES : opts.profiles;
  let isDown = false;
  let newOrderPath: string | undefined;
  const newOrders: NewOrderRecord[] = [];
  /** authorization path → expiry to answer with. */
  const authzExpiry = new Map<string, string>();
  const sockets = new Set<Socket>();

  const server = createHttpsServer({ cert, key }, (req, res) => {
    if (isDown) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? '/';
      let record: NewOrderRecord | undefined;
      if (req.method === 'POST' && newOrderPath && path === newOrderPath) {
        const payload = jwsPayload(body);
        record = {
          at: new Date(),
          profile: typeof payload?.profile === 'string' ? payload.profile : undefined,
          identifiers: Array.isArray(payload?.identifiers) ? payload.identifiers : [],
          rejected: false,
        };
        newOrders.push(record);
        const offered = profiles;
        if (record.profile !== undefined && (!offered || !Object.hasOwn(offered, record.profile))) {
          record.rejected = true;
          res.writeHead(400, { 'content-type': 'application/problem+json' });
          res.end(
            JSON.stringify({
              type: 'urn:ietf:params:acme:error:invalidProfile',
              detail: `profile "${record.profile}" is not offered by this CA`,
              status: 400,
            }),
          );
          return;
        }
      }
      const up = httpsRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path,
          // Host stays the proxy's: Pebble builds its URLs and checks the JWS url against it.
          headers: { ...req.headers },
          ca,
        },
        (upRes) => {
          const parts: Buffer[] = [];
          upRes.on('data', (c: Buffer) => parts.push(c));
          upRes.on('end', () => {
            let out = Buffer.concat(parts);
            const headers = { ...upRes.headers };
            const rewrite = (fn: (json: Record<string, unknown>) => void) => {
              const json = JSON.parse(out.toString('utf8')) as Record<string, unknown>;
              fn(json);
              out = Buffer.from(JSON.stringify(json));
              headers['content-length'] = String(out.length);
            };
            if (req.method === 'GET' && path === upstream.pathname && upRes.statusCode === 200) {
              rewrite((dir) => {
                newOrderPath = new URL(String(dir.newOrder)).pathname;
                const meta = (dir.meta ?? {}) as Record<string, unknown>;
                if (profiles) meta.profiles = { ...profiles };
                dir.meta = meta;
              });
            } else if (record && upRes.statusCode === 201) {
              const lifetime = record.profile ? opts.authorizationLifetimeMs?.[record.profile] : undefined;
              rewrite((order) => {
                if (record?.profile) order.profile = record.profile;
                if (lifetime !== undefined) {
                  const expires = new Date(Date.now() + lifetime).toISOString();
                  for (const u of (order.authorizations as string[]) ?? [])
                    authzExpiry.set(new URL(u).pathname, expires);
                }
              });
            } else if (req.method === 'POST' && authzExpiry.has(path) && upRes.statusCode === 200) {
              rewrite((authz) => {
                authz.expires = authzExpiry.get(path);
              });
            }
            res.writeHead(upRes.statusCode ?? 502, headers);
            res.end(out);
          });
          upRes.on('error', () => res.destroy());
        },
      );
      up.on('error', (err) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${err.message}`);
      });
      up.end(body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    if (isDown) s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    directoryUrl: `https://127.0.0.1:${port}${upstream.pathname}`,
    newOrders,
    forwarded: () => newOrders.filter((o) => !o.rejected),
    setProfiles(p) {
      profiles = p;
    },
    down() {
      isDown = true;
      for (const s of sockets) s.destroy();
    },
    up() {
      isDown = false;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The decoded payload of a flattened JWS (RFC 7515 §7.2.2), or undefined. */
function jwsPayload(body: Buffer): Record<string, unknown> | undefined {
  try {
    const jws = JSON.parse(body.toString('utf8')) as { payload?: string };
    if (!jws.payload) return undefined;
    return JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
