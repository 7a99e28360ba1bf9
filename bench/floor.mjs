/**
 * The floor: the same ACME exchanges certkeeper makes, done by raw acme-client with nothing around it — no
 * configuration, store, state, self-check, locking or logging. Plain JavaScript on plain node (no loader), so the
 * process is as cheap as it gets. `npm run bench` runs it as a whole child process beside `certkeeper renew`.
 *
 *   NODE_EXTRA_CA_CERTS=pebble.pem node bench/floor.mjs --directory URL --webroot DIR --out DIR \
 *     --account DIR --names a.test,b.test [--concurrency 10]
 *
 * Per name: a new ECDSA P-256 key and CSR, newOrder, the authorizations, the HTTP-01 key authorization written into
 * the webroot, the challenge answered, polling every 20 ms until valid, finalize, polling, download, fullchain and
 * key written to --out. The account key and URL in --account are reused when present (certkeeper reuses its
 * account too); otherwise the account is registered and saved first, inside the timed process.
 */
import { generateKeyPairSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as acme from 'acme-client';

const { values: args } = parseArgs({
  options: {
    directory: { type: 'string' },
    webroot: { type: 'string' },
    out: { type: 'string' },
    account: { type: 'string' },
    names: { type: 'string' },
    concurrency: { type: 'string', default: '10' },
  },
});
const names = (args.names ?? '').split(',').filter(Boolean);
const concurrency = Math.max(1, Number(args.concurrency));
const challengeDir = join(args.webroot, '.well-known', 'acme-challenge');

async function account() {
  const keyFile = join(args.account, 'key.pem');
  const urlFile = join(args.account, 'url');
  const [key, url] = await Promise.all([
    fs.readFile(keyFile, 'utf8').catch(() => undefined),
    fs.readFile(urlFile, 'utf8').catch(() => undefined),
  ]);
  // 20 ms between polls, never growing: the same interval certkeeper starts with.
  const opts = { directoryUrl: args.directory, backoffMin: 20, backoffMax: 20, backoffAttempts: 3000 };
  if (key && url) return new acme.Client({ ...opts, accountKey: key, accountUrl: url });
  const accountKey = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;
  const client = new acme.Client({ ...opts, accountKey });
  await client.createAccount({ termsOfServiceAgreed: true });
  await fs.mkdir(args.account, { recursive: true });
  await fs.writeFile(keyFile, accountKey, { mode: 0o600 });
  await fs.writeFile(urlFile, client.getAccountUrl());
  return client;
}

async function issue(client, name) {
  const key = await acme.crypto.createPrivateEcdsaKey('P-256');
  const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, key);
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
  const authzs = await client.getAuthorizations(order);
  for (const authz of authzs) {
    const challenge = authz.challenges.find((c) => c.type === 'http-01');
    const file = join(challengeDir, challenge.token);
    await fs.writeFile(file, await client.getChallengeKeyAuthorization(challenge));
    try {
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(authz);
    } finally {
      await fs.rm(file, { force: true });
    }
  }
  await client.finalizeOrder(order, csr);
  const done = await client.waitForValidStatus(order);
  const fullchain = await client.getCertificate(done);
  const dir = join(args.out, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(join(dir, 'privkey.pem'), key, { mode: 0o600 });
  await fs.writeFile(join(dir, 'fullchain.pem'), fullchain);
}

async function main() {
  await fs.mkdir(challengeDir, { recursive: true });
  const client = await account();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++];
      try {
        await issue(client, name);
      } catch (err) {
        failed++;
        process.stderr.write(`${name}: ${err?.message ?? err}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  process.stdout.write(`${JSON.stringify({ ok: names.length - failed, failed })}\n`);
  process.exitCode = failed ? 1 : 0;
}

await main();
