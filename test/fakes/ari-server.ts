/**
 * ACME Renewal Information (RFC 9773) beside Pebble 2.4, which has none. Plain HTTP on 127.0.0.1:
 *   GET /directory              → Pebble's directory JSON + "renewalInfo": "http://127.0.0.1:P/renewalInfo"
 *   GET /renewalInfo/<certID>   → {"suggestedWindow": {start, end}, "explanationURL"?} with Retry-After
 * Every other URL in the directory is still Pebble's, so orders go to Pebble unchanged.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleRequest } from '../harness/http.js';

export { ariCertId, ariCertIdFromParts, ariParts } from '../../src/acme/ari-id.js';

export interface AriWindow {
  start: Date | string;
  end: Date | string;
}

export interface AriResponse {
  status?: number;
  body?:
    | { suggestedWindow: { start: string; end: string }; explanationURL?: string }
    | Record<string, unknown>;
  retryAfterSeconds?: number;
}

export interface AriServerOptions {
  upstreamDirectoryUrl: string;
  /** PEM file trusting the upstream's HTTPS (PebbleHandle.caBundlePath). */
  caBundlePath: string;
  /** Decides the answer for a certID; return undefined to fall back to setWindow() / the default window. */
  respond?: (certId: string) => AriResponse | undefined;
  /** Retry-After for answers that do not set one. Default 21600 (6 h, the value RFC 9773 suggests). */
  defaultRetryAfterSeconds?: number;
}

export interface AriServer {
  directoryUrl: string;
  renewalInfoUrl: string;
  /** certIDs asked for, in order (URL-decoded path segment). */
  requests: string[];
  /** Window answered for one certID, or for all ('*') that have none of their own. */
  setWindow(certId: string | '*', window: AriWindow): void;
  stop(): Promise<void>;
}

const DAY = 86_400_000;

function iso(d: Date | string): string {
  return typeof d === 'string' ? d : d.toISOString();
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export async function startAriServer(opts: AriServerOptions): Promise<AriServer> {
  const ca = await readFile(opts.caBundlePath, 'utf8');
  const windows = new Map<string, AriWindow>();
  const requests: string[] = [];
  const retryDefault = opts.defaultRetryAfterSeconds ?? 21_600;
  let base = '';

  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(
          res,
          405,
          { type: 'urn:ietf:params:acme:error:malformed', detail: 'only GET here' },
          { allow: 'GET' },
        );
        return;
      }
      if (path === '/directory' || path === '/dir') {
        const up = await simpleRequest(opts.upstreamDirectoryUrl, { ca, timeoutMs: 5000 });
        if (up.status !== 200) {
          send(res, 502, {
            type: 'urn:ietf:params:acme:error:serverInternal',
            detail: `upstream said ${up.status}`,
          });
          return;
        }
        const dir = JSON.parse(up.body) as Record<string, unknown>;
        send(res, 200, { ...dir, renewalInfo: `${base}/renewalInfo` });
        return;
      }
      const m = /^\/renewalInfo\/([^/]+)$/.exec(path);
      if (!m) {
        send(res, 404, { type: 'urn:ietf:params:acme:error:malformed', detail: `no such resource ${path}` });
        return;
      }
      const certId = decodeURIComponent(m[1] as string);
      requests.push(certId);
      if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(certId)) {
        send(res, 400, {
          type: 'urn:ietf:params:acme:error:malformed',
          detail: `malformed certID "${certId}"`,
        });
        return;
      }
      const custom = opts.respond?.(certId);
      const window = windows.get(certId) ?? windows.get('*');
      const now = Date.now();
      const body = custom?.body ?? {
        suggestedWindow: window
          ? { start: iso(window.start), end: iso(window.end) }
          : { start: new Date(now + 30 * DAY).toISOString(), end: new Date(now + 32 * DAY).toISOString() },
      };
      send(res, custom?.status ?? 200, body, {
        'retry-after': String(custom?.retryAfterSeconds ?? retryDefault),
      });
    })().catch((err: unknown) => {
      if (!res.headersSent)
        send(res, 500, { type: 'urn:ietf:params:acme:error:serverInternal', detail: String(err) });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;

  return {
    directoryUrl: `${base}/directory`,
    renewalInfoUrl: `${base}/renewalInfo`,
    requests,
    setWindow(certId, window) {
      windows.set(certId, window);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
