import type { Config } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';
import type { Logger } from '../log.js';
import { readCaBundle } from '../platform/ca-bundle.js';
import { CertStore } from '../store/store.js';
import type { Store } from '../store/types.js';
import { ensureAccount } from './account.js';
import { callAcme } from './errors.js';
import { configureAcmeHttp } from './http.js';
import { REVOCATION_REASONS, type RevocationReason } from './revocation-reasons.js';

export { REVOCATION_REASONS, type RevocationReason };

/**
 * Revokes the live certificate of `name` with the account's key and marks it so the next renew replaces it.
 * `store`: where the mark goes (cluster: the PostgreSQL store, so whichever node renews next replaces it).
 */
export async function revokeCertificate(
  config: Config,
  name: string,
  reason: RevocationReason,
  logger: Logger,
  opts: { store?: Store } = {},
): Promise<{ serial: string }> {
  const local = opts.store ? undefined : new CertStore(config.storage.path);
  const store: Store = opts.store ?? (local as CertStore);
  const live = await store.current(name);
  if (!live || live.placeholder) {
    throw new CertkeeperError('store', `no issued certificate is live for "${name}"`, {
      cert: name,
      hint: 'run certkeeper status to see what is stored',
    });
  }
  const caBundlePem = config.acme.caBundle ? await readCaBundle(config.acme.caBundle) : undefined;
  configureAcmeHttp({ caBundlePem, directoryUrl: config.acme.directoryUrl });
  const release = local
    ? await local.lock(name)
    : await store.locker
        .lock(name, { waitMs: (config.acme.orderTimeoutSeconds + 120) * 1000 })
        .then((l) => () => l.release());
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
