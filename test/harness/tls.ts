import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { splitPemChain } from '../../src/crypto/pem.js';

function derToPem(der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * Connects with TLS, sends `servername` as SNI and returns the leaf the server presented. Without `ca` the chain is
 * not checked (the point is to see WHICH certificate is served); with `ca` it must verify.
 */
export function fetchServedCertificate(opts: {
  host: string;
  port: number;
  servername: string;
  ca?: string;
  timeoutMs?: number;
}): Promise<{ serial: string; pem: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: opts.host,
      port: opts.port,
      servername: opts.servername,
      ca: opts.ca,
      rejectUnauthorized: opts.ca !== undefined,
    });
    socket.setTimeout(opts.timeoutMs ?? 5000, () =>
      socket.destroy(
        new Error(`TLS handshake with ${opts.host}:${opts.port} (${opts.servername}) timed out`),
      ),
    );
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate(false);
      socket.end();
      if (!peer?.raw) {
        reject(new Error(`${opts.host}:${opts.port} presented no certificate for ${opts.servername}`));
        return;
      }
      const pem = derToPem(peer.raw);
      resolve({ serial: new X509Certificate(pem).serialNumber.toUpperCase(), pem });
    });
    socket.once('error', reject);
  });
}

/**
 * True when every certificate in `fullchainPem` (leaf first) is signed by the next one, the last one by the root in
 * `rootPem`, and all of them are within their validity period now.
 */
export function verifyChain(fullchainPem: string, rootPem: string, now: Date = new Date()): boolean {
  const chain = splitPemChain(fullchainPem).map((p) => new X509Certificate(p));
  const rootBlock = splitPemChain(rootPem)[0];
  if (chain.length === 0 || !rootBlock) return false;
  const root = new X509Certificate(rootBlock);
  const all = [...chain];
  // A chain that already ends in the root is fine; otherwise append it.
  if (chain[chain.length - 1]?.fingerprint256 !== root.fingerprint256) all.push(root);
  const t = now.getTime();
  for (const c of all) {
    if (Date.parse(c.validFrom) > t || Date.parse(c.validTo) < t) return false;
  }
  for (let i = 0; i < all.length - 1; i++) {
    const child = all[i] as X509Certificate;
    const parent = all[i + 1] as X509Certificate;
    if (!parent.ca || !child.checkIssued(parent) || !child.verify(parent.publicKey)) return false;
  }
  return root.verify(root.publicKey);
}
