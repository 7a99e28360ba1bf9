import type { CertificateConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';

/**
 * Before the first order of a certificate with nothing live (any challenge, any deployer, or none — the classic
 * certbot setup where nginx reloads on its own): a short-lived self-signed placeholder so a server that names the
 * files can start even when the CA is down. Marked in state; status, /readyz and metrics call it a placeholder;
 * never imported to ACM (placeholders are never deployed). `bootstrap: false` on the certificate turns it off.
 */
export async function defaultBootstrap(
  cert: CertificateConfig,
  store: Store,
  logger: Logger,
): Promise<boolean> {
  const { ensureBootstrap } = await import('../deploy/bootstrap.js');
  return ensureBootstrap(cert, store, logger);
}
