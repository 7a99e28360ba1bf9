/**
 * First boot for nginx: nginx refuses to start when a `ssl_certificate` file is missing, and configs written for
 * certbot also include `options-ssl-nginx.conf` and `ssl_dhparam ssl-dhparams.pem`. Before the first order, give
 * nginx something to load: a short-lived self-signed placeholder (marked in state, never reported as valid) and the
 * two shared files. A real certificate is never replaced by a placeholder.
 */
import { join } from 'node:path';
import type { CertificateConfig } from '../config/schema.js';
import { createPlaceholderCert } from '../crypto/placeholder-cert.js';
import type { Logger } from '../log.js';
import { exists, writeFileAtomic } from '../store/fsutil.js';
import type { Store } from '../store/types.js';

/** Days the placeholder is valid: long enough to survive a CA outage at first boot, short enough to be noticed. */
export const PLACEHOLDER_DAYS = 7;

/**
 * Writes the placeholder when nothing is live for `cert.name`, and the shared nginx files when absent.
 * Returns true when a placeholder was written. The caller holds the certificate's lock.
 */
export async function ensureBootstrap(
  cert: CertificateConfig,
  store: Store & { root?: string },
  logger: Logger,
): Promise<boolean> {
  if (store.root) await ensureNginxSharedFiles(store.root, logger);
  if (await store.current(cert.name)) return false;
  const { certPem, keyPem } = await createPlaceholderCert({
    commonName: cert.domains[0]!,
    altNames: cert.domains,
    days: PLACEHOLDER_DAYS,
    keyType: cert.keyType,
  });
  // Check again right before writing: a real certificate may have appeared meanwhile (adoption, another process).
  if (await store.current(cert.name)) return false;
  const live = await store.save(cert.name, {
    domains: cert.domains,
    keyType: cert.keyType,
    fullchainPem: certPem,
    keyPem,
    placeholder: true,
  });
  logger.info(
    { cert: cert.name, serial: live.serial, notAfter: live.notAfter.toISOString() },
    'no certificate yet: wrote a self-signed placeholder so nginx can start; the real one is ordered next',
  );
  return true;
}

/** Writes `<storage>/options-ssl-nginx.conf` and `<storage>/ssl-dhparams.pem` when they do not exist. Returns what was written. */
export async function ensureNginxSharedFiles(root: string, logger: Logger): Promise<string[]> {
  const written: string[] = [];
  for (const [file, content] of [
    ['options-ssl-nginx.conf', OPTIONS_SSL_NGINX],
    ['ssl-dhparams.pem', FFDHE2048_PEM],
  ] as const) {
    const path = join(root, file);
    if (await exists(path)) continue;
    await writeFileAtomic(path, content, 0o644);
    written.push(path);
    logger.info({ path }, `wrote ${file}`);
  }
  return written;
}

/** TLS settings for nginx configs that `include /etc/letsencrypt/options-ssl-nginx.conf;` (certbot's file name). */
export const OPTIONS_SSL_NGINX = `# Written by certkeeper because it was absent; certkeeper never changes it afterwards.
# TLS 1.2 and 1.3 with forward-secret AEAD ciphers (Mozilla "intermediate").

ssl_session_cache shared:le_nginx_SSL:10m;
ssl_session_timeout 1440m;
ssl_session_tickets off;

ssl_protocols TLSv1.2 TLSv1.3;
ssl_prefer_server_ciphers off;

ssl_ciphers "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
`;

/**
 * The ffdhe2048 group of RFC 7919 (appendix A.1), generator 2, as PKCS#3 DH parameters — a published constant,
 * so nothing is generated at first boot (certbot ships the same group as ssl-dhparams.pem).
 */
export const FFDHE2048_PEM = `-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
`;
