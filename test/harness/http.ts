import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One bounded HTTP(S) request; `ca` is the PEM to trust for https URLs. Loopback use only. */
export function simpleRequest(
  url: string,
  opts: {
    method?: string;
    body?: string;
    ca?: string;
    timeoutMs?: number;
    headers?: Record<string, string>;
  } = {},
): Promise<SimpleResponse> {
  const u = new URL(url);
  const isHttps = u.protocol === 'https:';
  const req = isHttps ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(
      u,
      {
        method: opts.method ?? 'GET',
        headers: { ...(opts.body !== undefined && { 'content-type': 'application/json' }), ...opts.headers },
        ...(isHttps && { ca: opts.ca, rejectUnauthorized: true }),
        agent: false,
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error(`request to ${url} timed out`)));
    r.on('error', reject);
    if (opts.body !== undefined) r.write(opts.body);
    r.end();
  });
}
