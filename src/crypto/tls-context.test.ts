import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCA, issueLeaf } from './selfsigned.js';

const run = promisify(execFile);
let dir: string;
const servers: Server[] = [];
const ports: Record<'a' | 'b', number> = { a: 0, b: 0 };
const caFiles: Record<'a' | 'b' | 'other', string> = { a: '', b: '', other: '' };

beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'ck-tlsctx-'));
  for (const n of ['a', 'b', 'other'] as const) {
    const ca = await createTestCA({ commonName: `ctx test ${n}` });
    caFiles[n] = join(dir, `${n}.pem`);
    await fs.writeFile(caFiles[n], ca.certPem);
    if (n === 'other') continue;
    const leaf = await issueLeaf(ca, { altNames: ['127.0.0.1'], days: 1 });
    const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    ports[n] = (server.address() as { port: number }).port;
  }
});
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await fs.rm(dir, { recursive: true, force: true });
});

/**
 * In a fresh node whose root store is OpenSSL's, holding CA a (--use-openssl-ca, SSL_CERT_FILE): GET each server
 * through secureContextFor(bundle). The root store node was started with stays trusted beside the bundle.
 */
async function reach(bundle: string): Promise<Record<string, string>> {
  const script = `
    import { readFileSync } from 'node:fs';
    import https from 'node:https';
    import { secureContextFor } from ${JSON.stringify(join(import.meta.dirname, 'tls-context.ts'))};
    const ctx = secureContextFor(readFileSync(${JSON.stringify(bundle)}, 'utf8'));
    const out = {};
    for (const [n, port] of Object.entries(${JSON.stringify(ports)})) {
      out[n] = await new Promise((resolve) => {
        https.get({ host: '127.0.0.1', port, secureContext: ctx, agent: false }, (res) => { res.resume(); resolve('ok'); })
          .on('error', (e) => resolve(e.code ?? e.message));
      });
    }
    process.stdout.write(JSON.stringify(out));`;
  const { stdout } = await run(
    process.execPath,
    ['--use-openssl-ca', '--import', 'tsx', '--input-type=module', '-e', script],
    {
      env: { ...process.env, SSL_CERT_FILE: caFiles.a, SSL_CERT_DIR: dir },
      timeout: 30_000,
    },
  );
  return JSON.parse(stdout) as Record<string, string>;
}

describe('secureContextFor', () => {
  it('trusts the bundle and keeps the root store node uses', async () => {
    expect(await reach(caFiles.b)).toEqual({ a: 'ok', b: 'ok' });
  });

  it('a bundle of another CA does not make the server trusted', async () => {
    const r = await reach(caFiles.other);
    expect(r.a).toBe('ok');
    expect(r.b).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|unable to verify/i);
  });
});
