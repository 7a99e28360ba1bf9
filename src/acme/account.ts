import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as acme from 'acme-client';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { readIfExists, writeFileAtomic } from '../store/fsutil.js';
import { callAcme } from './errors.js';
import { useNoncePool } from './http.js';
import { createPrivateKey } from './keys.js';

interface AccountFile {
  url: string;
  directoryUrl: string;
  contact: string[];
  createdAt: string;
}

export interface Account {
  client: acme.Client;
  accountKeyPem: string;
  url: string;
  directoryUrl: string;
}

/** `<storage>/accounts/<ca-host[_port]>/`: one account per CA, shared by every certificate. */
export function accountDir(storagePath: string, directoryUrl: string): string {
  const u = new URL(directoryUrl);
  return join(storagePath, 'accounts', u.port ? `${u.hostname}_${u.port}` : u.hostname, 'certkeeper');
}

/**
 * Loads the account key (creating it once, 0600) and makes sure the account is registered with ToS agreement,
 * contact and EAB when configured. Reuses the stored account URL so a normal run makes no newAccount call.
 */
export async function ensureAccount(
  acmeConfig: Config['acme'],
  storagePath: string,
  directoryUrl: string,
  logger: Logger,
): Promise<Account> {
  const dir = accountDir(storagePath, directoryUrl);
  const keyPath = join(dir, 'account.key');
  const metaPath = join(dir, 'account.json');
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  let accountKeyPem = await readIfExists(keyPath);
  if (!accountKeyPem) {
    accountKeyPem = await createPrivateKey('ecdsa-p256');
    await writeFileAtomic(keyPath, accountKeyPem, 0o600);
    logger.info({ event: 'account.key_created', directoryUrl }, 'created ACME account key');
  }
  const metaText = await readIfExists(metaPath);
  const meta = metaText ? (JSON.parse(metaText) as AccountFile) : undefined;
  const contact = acmeConfig.email ? [`mailto:${acmeConfig.email}`] : [];
  const backoff = { backoffAttempts: 40, backoffMin: 50, backoffMax: 2000 };
  if (meta?.url && meta.directoryUrl === directoryUrl) {
    const client = new acme.Client({
      directoryUrl,
      accountKey: accountKeyPem,
      accountUrl: meta.url,
      ...backoff,
    });
    useNoncePool(client, directoryUrl);
    if (JSON.stringify(meta.contact) !== JSON.stringify(contact)) {
      await callAcme('updating the ACME account contact', {}, () => client.updateAccount({ contact }));
      await writeFileAtomic(metaPath, JSON.stringify({ ...meta, contact }, null, 2));
    }
    return { client, accountKeyPem, url: meta.url, directoryUrl };
  }
  const client = new acme.Client({
    directoryUrl,
    accountKey: accountKeyPem,
    ...(acmeConfig.eab
      ? { externalAccountBinding: { kid: acmeConfig.eab.kid, hmacKey: acmeConfig.eab.hmacKey } }
      : {}),
    ...backoff,
  });
  useNoncePool(client, directoryUrl);
  await callAcme('registering the ACME account', {}, () =>
    client.createAccount({ termsOfServiceAgreed: true, contact }),
  );
  const url = client.getAccountUrl();
  await writeFileAtomic(
    metaPath,
    JSON.stringify(
      { url, directoryUrl, contact, createdAt: new Date().toISOString() } satisfies AccountFile,
      null,
      2,
    ),
  );
  logger.info({ event: 'account.registered', directoryUrl }, 'registered ACME account');
  return { client, accountKeyPem, url, directoryUrl };
}
