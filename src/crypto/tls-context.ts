import tls from 'node:tls';

const contexts = new Map<string, tls.SecureContext>();

/**
 * One TLS context per CA bundle (the system roots plus the bundle), made once and shared by every connection to
 * the CA: ACME requests, ARI, preflight. Given `ca:` instead, node builds a new context for each socket, parsing
 * the ~150 system roots and the bundle every time (several ms each; about 40 ms of a cold `renew`).
 */
export function secureContextFor(caBundlePem: string): tls.SecureContext {
  let ctx = contexts.get(caBundlePem);
  if (!ctx) {
    ctx = tls.createSecureContext({ ca: [...tls.rootCertificates, caBundlePem] });
    contexts.set(caBundlePem, ctx);
  }
  return ctx;
}
