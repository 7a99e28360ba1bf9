import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as acme from 'acme-client';
import type { Config } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';
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
  /**
   * Registers a new account after the CA forgot this one (accountDoesNotExist): the old key and account file are
   * moved aside, a new key is made, and this object is updated in place so every order of the run uses it.
   * Concurrent callers share one registration.
   */
  reRegister?: () => Promise<void>;
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
  const account = await loadOrRegister(acmeConfig, storagePath, directoryUrl, logger);
  let pending: Promise<void> | undefined;
  account.reRegister = () => {
    pending ??= (async () => {
      const fresh = await registerAfresh(acmeConfig, storagePath, directoryUrl, logger);
      Object.assign(account, { client: fresh.client, accountKeyPem: fresh.accountKeyPem, url: fresh.url });
    })();
    return pending;
  };
  return account;
}

/** Moves account.key and account.json aside (kept, never deleted) and registers a new account with a new key. */
async function registerAfresh(
  acmeConfig: Config['acme'],
  storagePath: string,
  directoryUrl: string,
  logger: Logger,
): Promise<Account> {
  const dir = accountDir(storagePath, directoryUrl);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (const f of ['account.key', 'account.json']) {
    await fs.rename(join(dir, f), join(dir, `${f}.lost-${stamp}`)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  logger.warn(
    { event: 'account.set_aside', directoryUrl, suffix: `.lost-${stamp}` },
    'the CA no longer knows the stored ACME account; its key was kept aside and a new account is registered',
  );
  return loadOrRegister(acmeConfig, storagePath, directoryUrl, logger);
}

async function loadOrRegister(
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
      try {
        await callAcme('updating the ACME account contact', {}, () => client.updateAccount({ contact }));
      } catch (err) {
        if (err instanceof CertkeeperError && err.code === 'CK_ERR_ACME_ACCOUNT_DOES_NOT_EXIST')
          return registerAfresh(acmeConfig, storagePath, directoryUrl, logger);
        throw err;
      }
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
  ).catch((err: unknown) => {
    throw acmeConfig.eab ? withEabHint(err) : err;
  });
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

/**
 * With EAB configured, a registration the CA refuses as unauthorized or malformed is nearly always a wrong kid or
 * HMAC key; the generic hints (about challenges) would send the user the wrong way.
 */
function withEabHint(err: unknown): unknown {
  if (!(err instanceof CertkeeperError)) return err;
  if (!/UNAUTHORIZED|MALFORMED|EXTERNAL_ACCOUNT|BAD_SIGNATURE/.test(err.code)) return err;
  return new CertkeeperError(err.kind, err.message, {
    code: 'CK_ERR_ACME_EAB',
    permanent: true,
    hint: 'the CA refused the External Account Binding: check acme.eab.kid and acme.eab.hmacKey (the base64url HMAC key exactly as your CA account shows it)',
    cause: err,
  });
}
