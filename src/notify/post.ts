import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * POSTs JSON and resolves on a 2xx answer; anything else rejects with the status (never the URL's query or the
 * headers, which may hold secrets).
 */
export function postJson(
  url: string,
  body: unknown,
  opts: { headers?: Record<string, string>; signal: AbortSignal; timeoutMs: number },
): Promise<number> {
  const u = new URL(url);
  const req = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const r = req(
      u,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          'user-agent': 'certkeeper',
          ...opts.headers,
        },
        timeout: opts.timeoutMs,
        signal: opts.signal,
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(status);
          else reject(new Error(`${u.host} answered HTTP ${status}`));
        });
        res.on('error', reject);
      },
    );
    r.on('timeout', () => r.destroy(new Error(`${u.host} gave no answer within ${opts.timeoutMs} ms`)));
    r.on('error', (err) => reject(new Error(`${u.host}: ${err.message}`)));
    r.end(text);
  });
}
