import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../log.js';
import type { ChallengeInput } from '../types.js';
import { create } from './index.js';

// A web server on the IPv6 loopback serving the webroot, like nginx would: the self-check for an IP identifier
// must ask the address itself (http://[::1]:port/…), never DNS.
let dir: string;
let server: Server;
let port: number;
const seen: { host?: string; url?: string }[] = [];

beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'ck-ipcheck-'));
  server = createServer((req, res) => {
    seen.push({ host: req.headers.host, url: req.url });
    fs.readFile(join(dir, decodeURIComponent(req.url ?? '').replace(/^\/+/, '')), 'utf8').then(
      (body) => res.writeHead(200).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '::1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await fs.rm(dir, { recursive: true, force: true });
});

const ch = (domain: string): ChallengeInput => ({
  certName: 'ip',
  domain,
  wildcard: false,
  type: 'http-01',
  token: 'tok-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  keyAuthorization: 'tok-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.thumb',
  dnsRecordName: '',
  dnsValue: '',
});

describe('HTTP-01 self-check of an IP address', () => {
  it('fetches the challenge from the address itself, IPv6 in brackets, with no DNS lookup', async () => {
    const solver = create(
      { type: 'http-01', webroot: dir },
      {
        logger: silentLogger,
        // a resolver that answers nothing: any lookup would fail the check
        selfCheck: { enabled: true, httpPort: port, resolvers: ['127.0.0.1:1'], timeoutSeconds: 3 },
      },
    );
    await solver.present(ch('::1'), { logger: silentLogger });
    try {
      await solver.check!([ch('::1')], { logger: silentLogger });
    } finally {
      await solver.cleanup(ch('::1'), { logger: silentLogger });
    }
    expect(seen).toEqual([
      { host: `[::1]:${port}`, url: '/.well-known/acme-challenge/tok-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    ]);
  });
});
