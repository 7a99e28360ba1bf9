import type { Config } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { readCaBundle } from '../platform/ca-bundle.js';
import { CertStore } from '../store/store.js';
import { ensureAccount } from './account.js';
import { callAcme } from './errors.js';
import { configureAcmeHttp } from './http.js';
import { REVOCATION_REASONS, type RevocationReason } from './revocation-reasons.js';

export { REVOCATION_REASONS, type RevocationReason };

/** Revokes the live certificate of `name` with the account's key and marks it so the next renew replaces it. */
export async function revokeCertificate(
  config: Config,
  name: string,
  reason: RevocationReason,
  logger: Logger,
): Promise<{ serial: string }> {
  const store = new CertStore(config.storage.path);
  const live = await store.current(name);
  if (!live || live.placeholder) {
    throw new CertkeeperError('store', `no issued certificate is live for "${name}"`, {
      cert: name,
      hint: 'run certkeeper status to see what is stored',
    });
  }
  const caBundlePem = config.acme.caBundle ? await readCaBundle(config.acme.caBundle) : undefined;
  configureAcmeHttp({ caBundlePem, directoryUrl: config.acme.directoryUrl });
  const release = await store.lock(name);
  try {
    const account = await ensureAccount(config.acme, config.storage.path, config.acme.directoryUrl, logger);
    await callAcme('revoking the certificate', { cert: name }, () =>
      account.client.revokeCertificate(live.certPem, { reason: REVOCATION_REASONS[reason] }),
    );
    await store.updateState(name, { revokedSerial: live.serial });
    logger.info(
      { event: 'revoke.done', cert: name, serial: live.serial, reason },
      `${name}: revoked serial ${live.serial}`,
    );
    return { serial: live.serial };
  } finally {
    await release();
  }
}
