import tls from 'node:tls';

const contexts = new Map<string, tls.SecureContext>();

/**
 * One TLS context per CA bundle (node's root store plus the bundle), made once and shared by every connection to
 * the CA: ACME requests, ARI, preflight. Given `ca:` instead, node builds a new context for each socket, parsing
 * the ~150 system roots and the bundle every time (several ms each; about 40 ms of a cold `renew`).
 */
export function secureContextFor(caBundlePem: string): tls.SecureContext {
  let ctx = contexts.get(caBundlePem);
  if (!ctx) {
    // The default context trusts node's root store (the bundled roots, or OpenSSL's with --use-openssl-ca); adding
    // the bundle to it copies that store's parsed roots (~1.5 ms). `ca: [...tls.rootCertificates, bundle]` parsed
    // all ~150 root PEMs again (~22 ms of a cold renew).
    ctx = tls.createSecureContext();
    const native = (ctx as { context?: { addCACert?: (pem: string) => void } }).context;
    if (typeof native?.addCACert === 'function') native.addCACert(caBundlePem);
    else ctx = tls.createSecureContext({ ca: [...tls.rootCertificates, caBundlePem] });
    contexts.set(caBundlePem, ctx);
  }
  return ctx;
}
