import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { renew } from '../renew.js';

describe('an unreachable CA', () => {
  it('fails with the URL, the cause and a fix (not the TypeError acme-client throws)', async () => {
    // a port that was just free: nothing listens there
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const config = parseConfig({
      acme: { directoryUrl: `https://127.0.0.1:${port}/dir` },
      storage: { path: `/tmp/ck-unreachable-${process.pid}` },
      certificates: [
        { name: 'a', domains: ['a.certkeeper.test'], challenge: { type: 'http-01', webroot: '/tmp' } },
      ],
    });
    const report = await renew(config);
    const r = report.results[0]!;
    expect(r.status).toBe('failed');
    expect(r.reason).toMatch(
      new RegExp(`cannot reach the CA at https://127\\.0\\.0\\.1:${port}/dir: ECONNREFUSED`),
    );
    expect(String(r.error?.hint)).toMatch(/acme\.directoryUrl/);
  });
});
