/**
 * The `acm` deployer: imports the stored certificate into AWS Certificate Manager, then re-imports every renewal
 * into the same ARN so CloudFront distributions and load balancer listeners keep using it with no change on their
 * side. The ARN and the key algorithm live in the certificate's state file under `acm:<region>`.
 *
 *   guards (no AWS call) → [DescribeCertificate for a configured, unknown ARN] → ImportCertificate →
 *   DescribeCertificate shows the new serial and notAfter → (re-import) tags reconciled with AddTagsToCertificate
 *
 * A failed attempt is retried with backoff; the last failure is a CertkeeperError('deploy'). Nothing here touches
 * the stored certificate, so the pipeline records "renewed but not deployed" and the other deployers still run.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import {
  type ACMClient,
  AddTagsToCertificateCommand,
  type CertificateDetail,
  DescribeCertificateCommand,
  ImportCertificateCommand,
  ListTagsForCertificateCommand,
} from '@aws-sdk/client-acm';
import { splitPemChain } from '../../crypto/pem.js';
import { CertkeeperError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { retry } from '../../platform/retry.js';
import type { DeployContext, Deployer, DeployerDeps, DeployResult, IssuedCertificate } from '../types.js';
import { awsErrorName, buildAcmClient, hintForAwsError, isPermanentAwsError } from './client.js';
import {
  type AcmKeyAlgorithm,
  acmKeyAlgorithmOf,
  CLOUDFRONT_KEY_ALGORITHMS,
  CLOUDFRONT_KEYS_TEXT,
  describeAlgorithm,
  KEY_TYPE_FOR,
  normalizeAlgorithm,
  normalizeSerial,
} from './keys.js';
import { type AcmDeployConfig, CERTKEEPER_TAG } from './schema.js';

export { type AcmAuditOptions, type Finding, type FindingRule, runAcmAudit } from './audit.js';
export { buildAcmClient } from './client.js';
export { managedArnsFromStore } from './managed.js';

/** What the deployer keeps in the state file under `acm:<region>`. */
export interface AcmDeployState {
  arn: string;
  keyAlgorithm: AcmKeyAlgorithm;
  serial?: string;
  notAfter?: string;
  importedAt?: string;
}

export interface RetryOptions {
  /** Import+confirm attempts in one deploy (default 3). The SDK retries throttling inside each attempt too. */
  attempts?: number;
  /** Wait before attempt 2, 3, ... (default 2 s, 8 s; ±20 % jitter). */
  delaysMs?: number[];
}

export interface AcmDeployerDeps extends DeployerDeps {
  client?: ACMClient;
  retry?: RetryOptions;
  now?: () => Date;
}

export const stateKeyFor = (region: string) => `acm:${region}`;

export function create(config: AcmDeployConfig, deps: AcmDeployerDeps): Deployer {
  const region = config.region;
  const name = stateKeyFor(region);
  let client = deps.client;
  const acm = () => {
    client ??= buildAcmClient(region);
    return client;
  };
  const attempts = Math.max(1, deps.retry?.attempts ?? 3);
  const delays = deps.retry?.delaysMs ?? [2_000, 8_000];
  const now = deps.now ?? (() => new Date());

  return {
    name,
    async deploy(cert: IssuedCertificate, ctx: DeployContext): Promise<DeployResult> {
      const log = ctx.logger.child({ deployer: name, cert: cert.name });
      if (cert.placeholder) {
        return {
          deployer: name,
          ok: true,
          detail: 'skipped: a self-signed placeholder is never imported into ACM',
        };
      }
      const material = checkBeforeImport(cert, config, now());
      const prev = ctx.getState<AcmDeployState>(name);
      let arn = config.arn ?? prev?.arn;
      if (config.arn && prev?.arn && prev.arn !== config.arn) {
        log.info(
          { stateArn: prev.arn, arn: config.arn },
          'the configured arn replaces the one in the state file',
        );
      }
      const known = prev?.arn !== undefined && prev.arn === arn ? prev.keyAlgorithm : undefined;
      if (arn && known) checkSameAlgorithm(cert, config, arn, known, material.algorithm);
      if (arn && !known) {
        // An ARN from the config that certkeeper has not imported into yet: look before writing.
        const detail = await withRetry(() => describeArn(acm(), arn!), {
          cert,
          action: 'acm:DescribeCertificate',
        });
        checkAdoptable(cert, config, arn, detail, material.algorithm);
      }
      const firstImport = arn === undefined;

      let confirmed: CertificateDetail | undefined;
      const run = async () => {
        const out = await acm().send(
          new ImportCertificateCommand({
            ...(arn && { CertificateArn: arn }),
            Certificate: Buffer.from(material.leafPem),
            PrivateKey: Buffer.from(cert.keyPem),
            ...(material.chainPem && { CertificateChain: Buffer.from(material.chainPem) }),
            // ACM accepts tags only when it creates the certificate; a re-import with tags fails.
            ...(!arn && { Tags: tagList(config, cert.name) }),
          }),
          { abortSignal: ctx.signal },
        );
        if (!arn) {
          if (!out.CertificateArn)
            throw new CertkeeperError('deploy', 'ACM returned no ARN for the import', { cert: cert.name });
          arn = out.CertificateArn;
          // Keep the ARN at once: a failed confirm must lead to a re-import, never to a second certificate.
          await ctx.setState(name, { arn, keyAlgorithm: material.algorithm } satisfies AcmDeployState);
        }
        confirmed = await confirm(acm(), arn, cert, region);
      };
      await withRetry(run, {
        cert,
        action: 'acm:ImportCertificate',
        attempts,
        delays,
        signal: ctx.signal,
        log,
        region,
      });

      await ctx.setState(name, {
        arn: arn!,
        keyAlgorithm: material.algorithm,
        serial: cert.serial,
        notAfter: cert.notAfter.toISOString(),
        importedAt: now().toISOString(),
      } satisfies AcmDeployState);

      let tagNote = '';
      if (!firstImport) tagNote = await reconcileTags(acm(), arn!, config, cert.name, log);
      const verb = firstImport ? 'imported into new ACM certificate' : 're-imported into';
      return {
        deployer: name,
        ok: true,
        detail: `${verb} ${arn} (serial ${cert.serial}, not after ${cert.notAfter.toISOString()}, confirmed by DescribeCertificate)${tagNote}`,
        // confirm() compared it with the stored serial: report it in the store's spelling.
        observedSerial: confirmed ? cert.serial : undefined,
      };
    },
  };

  async function withRetry<T>(
    fn: () => Promise<T>,
    o: {
      cert: IssuedCertificate;
      action: string;
      attempts?: number;
      delays?: number[];
      signal?: AbortSignal;
      log?: Logger;
      region?: string;
    },
  ): Promise<T> {
    const max = o.attempts ?? attempts;
    const base = o.delays ?? delays;
    // Wait before attempt 2..max: the configured delays, the last one repeated, ±20 % jitter.
    const waits = Array.from({ length: max - 1 }, (_, i) =>
      Math.round((base[i] ?? base.at(-1) ?? 1_000) * (0.8 + Math.random() * 0.4)),
    );
    let tries = 0;
    try {
      return await retry(
        (attempt) => {
          tries = attempt;
          return fn();
        },
        {
          delaysMs: waits,
          signal: o.signal,
          retryable: (err) => !isPermanentAwsError(err),
          onRetry: (err, attempt, waitMs) =>
            o.log?.warn({ attempt, of: max, waitMs, error: errorLine(err) }, 'ACM attempt failed; retrying'),
        },
      );
    } catch (err) {
      throw asDeployError(err, o.cert, o.action, tries, isPermanentAwsError(err));
    }
  }

  function asDeployError(
    err: unknown,
    cert: IssuedCertificate,
    action: string,
    tries: number,
    permanent: boolean,
  ) {
    const after = tries > 1 ? ` after ${tries} attempts` : '';
    if (err instanceof CertkeeperError) {
      if (!after) return err;
      return new CertkeeperError(err.kind, `${err.message}${after}`, {
        cert: cert.name,
        code: err.code,
        hint: err.hint,
        permanent: err.permanent,
        cause: err,
      });
    }
    const gone = awsErrorName(err) === 'ResourceNotFoundException';
    return new CertkeeperError('deploy', `${action} in ${region} failed${after}: ${errorLine(err)}`, {
      cert: cert.name,
      code: gone ? 'CK_ERR_ACM_ARN_GONE' : 'CK_ERR_ACM',
      hint: gone
        ? `the ACM certificate certkeeper re-imports into no longer exists: ${config.arn ? 'fix or remove arn in this deployer' : `delete "${name}" under deploy in state/${cert.name}.json`} so certkeeper imports a new one, then attach the new ARN where the old one was used`
        : hintForAwsError(err, action, region),
      permanent,
      cause: err,
    });
  }
}

interface ImportMaterial {
  algorithm: AcmKeyAlgorithm;
  /** The leaf alone. */
  leafPem: string;
  /** The intermediates alone (never the leaf), or '' when there are none. */
  chainPem: string;
}

/** Every check that needs no AWS call. Throws a permanent CertkeeperError('deploy') that says what to change. */
export function checkBeforeImport(
  cert: IssuedCertificate,
  config: AcmDeployConfig,
  now: Date = new Date(),
): ImportMaterial {
  const alg = acmKeyAlgorithmOf(cert.keyPem);
  if (!alg.ok) {
    throw new CertkeeperError('deploy', `ACM cannot import ${alg.description}`, {
      cert: cert.name,
      field: 'keyType',
      code: 'CK_ERR_ACM_KEY_TYPE',
      permanent: true,
      hint: `ACM imports RSA 1024/2048/3072/4096 and ECDSA P-256/P-384/P-521 keys: set keyType: ecdsa-p256 (or rsa-2048) for "${cert.name}" and run certkeeper renew --force ${cert.name}`,
    });
  }
  if (config.cloudfront && !CLOUDFRONT_KEY_ALGORITHMS.includes(alg.algorithm)) {
    throw new CertkeeperError(
      'deploy',
      `CloudFront does not accept ${describeAlgorithm(alg.algorithm)} keys (cloudfront: true)`,
      {
        cert: cert.name,
        field: 'keyType',
        code: 'CK_ERR_ACM_CLOUDFRONT_KEY',
        permanent: true,
        hint: `CloudFront takes ${CLOUDFRONT_KEYS_TEXT} keys: set keyType: ecdsa-p256 (or rsa-2048) for "${cert.name}" and run certkeeper renew --force ${cert.name}`,
      },
    );
  }
  const blocks = splitPemChain(cert.certPem);
  const leafPem = blocks[0] ?? splitPemChain(cert.fullchainPem)[0];
  if (!leafPem) {
    throw new CertkeeperError('deploy', 'the stored certificate has no PEM certificate in it', {
      cert: cert.name,
      permanent: true,
      hint: `run certkeeper renew --force ${cert.name} to write a complete set of files`,
    });
  }
  const leaf = new X509Certificate(leafPem);
  let keyMatches = false;
  try {
    keyMatches = leaf.checkPrivateKey(createPrivateKey(cert.keyPem));
  } catch {
    keyMatches = false;
  }
  if (!keyMatches) {
    throw new CertkeeperError('deploy', 'the private key does not belong to the certificate', {
      cert: cert.name,
      code: 'CK_ERR_ACM_KEY_MISMATCH',
      permanent: true,
      hint: `the live files of "${cert.name}" do not belong together: run certkeeper renew --force ${cert.name}`,
    });
  }
  if (new Date(leaf.validFrom) > now || new Date(leaf.validTo) < now) {
    throw new CertkeeperError(
      'deploy',
      `ACM refuses a certificate outside its validity (${leaf.validFrom} – ${leaf.validTo})`,
      {
        cert: cert.name,
        code: 'CK_ERR_ACM_VALIDITY',
        permanent: true,
        hint: `check the system clock, then run certkeeper renew --force ${cert.name}`,
      },
    );
  }
  // Intermediates only: whatever the chain file holds, minus the leaf (some CAs and hand-made files repeat it).
  const source = cert.chainPem.trim() ? cert.chainPem : splitPemChain(cert.fullchainPem).slice(1).join('');
  const chainPem = splitPemChain(source)
    .filter((b) => new X509Certificate(b).fingerprint256 !== leaf.fingerprint256)
    .join('');
  return { algorithm: alg.algorithm, leafPem, chainPem };
}

function checkSameAlgorithm(
  cert: IssuedCertificate,
  config: AcmDeployConfig,
  arn: string,
  existing: string,
  next: AcmKeyAlgorithm,
) {
  if (normalizeAlgorithm(existing) === next) return;
  const keepType = KEY_TYPE_FOR[normalizeAlgorithm(existing) as AcmKeyAlgorithm];
  throw new CertkeeperError(
    'deploy',
    `${arn} holds a ${describeAlgorithm(existing)} key and ACM cannot re-import a ${describeAlgorithm(next)} key into it`,
    {
      cert: cert.name,
      field: 'keyType',
      code: 'CK_ERR_ACM_KEY_CHANGE',
      permanent: true,
      hint:
        (keepType
          ? `set keyType: ${keepType} back for "${cert.name}" and run certkeeper renew --force ${cert.name}; `
          : '') +
        `or, to change the key type, ${config.arn ? 'remove arn from this deployer' : `delete "${stateKeyFor(config.region)}" under deploy in state/${cert.name}.json`} so certkeeper imports a new certificate, then attach the new ARN to your CloudFront distributions / load balancer listeners`,
    },
  );
}

function checkAdoptable(
  cert: IssuedCertificate,
  config: AcmDeployConfig,
  arn: string,
  detail: CertificateDetail,
  next: AcmKeyAlgorithm,
) {
  if (detail.Type && detail.Type !== 'IMPORTED') {
    throw new CertkeeperError(
      'deploy',
      `${arn} is an ${detail.Type} certificate; only imported certificates can be re-imported`,
      {
        cert: cert.name,
        field: 'arn',
        code: 'CK_ERR_ACM_NOT_IMPORTED',
        permanent: true,
        hint: 'ACM renews its own certificates (see certkeeper acm audit): remove arn so certkeeper imports a new certificate, or point arn at an imported one',
      },
    );
  }
  if (detail.KeyAlgorithm) checkSameAlgorithm(cert, config, arn, detail.KeyAlgorithm, next);
}

async function describeArn(client: ACMClient, arn: string): Promise<CertificateDetail> {
  const out = await client.send(new DescribeCertificateCommand({ CertificateArn: arn }));
  return out.Certificate ?? {};
}

/** DescribeCertificate must show the serial and notAfter just imported. */
async function confirm(
  client: ACMClient,
  arn: string,
  cert: IssuedCertificate,
  region: string,
): Promise<CertificateDetail> {
  const d = await describeArn(client, arn);
  const serialOk = normalizeSerial(d.Serial) === normalizeSerial(cert.serial);
  const notAfterOk =
    d.NotAfter !== undefined && Math.abs(d.NotAfter.getTime() - cert.notAfter.getTime()) < 1_000;
  if (serialOk && notAfterOk) return d;
  throw new CertkeeperError(
    'deploy',
    `after the import ACM shows serial ${d.Serial ?? '(none)'} (not after ${d.NotAfter?.toISOString() ?? 'unknown'}) on ${arn}, expected ${cert.serial} (not after ${cert.notAfter.toISOString()})`,
    {
      cert: cert.name,
      code: 'CK_ERR_ACM_CONFIRM',
      hint: `certkeeper re-imports on its next run; if this repeats, check that nothing else imports into ${arn} in ${region}`,
    },
  );
}

function tagList(config: AcmDeployConfig, certName: string) {
  return [...Object.entries(config.tags ?? {}), [CERTKEEPER_TAG, certName] as const].map(([Key, Value]) => ({
    Key,
    Value,
  }));
}

/** After a re-import: add configured tags the certificate lacks (never removes tags someone else set). */
async function reconcileTags(
  client: ACMClient,
  arn: string,
  config: AcmDeployConfig,
  certName: string,
  log: Logger,
): Promise<string> {
  const wanted = tagList(config, certName);
  try {
    const have = (await client.send(new ListTagsForCertificateCommand({ CertificateArn: arn }))).Tags ?? [];
    const missing = wanted.filter((w) => !have.some((h) => h.Key === w.Key && (h.Value ?? '') === w.Value));
    if (missing.length === 0) return '';
    await client.send(new AddTagsToCertificateCommand({ CertificateArn: arn, Tags: missing }));
    return `; tags ${missing.map((t) => t.Key).join(', ')} added with AddTagsToCertificate`;
  } catch (err) {
    log.warn({ error: errorLine(err) }, 'could not reconcile ACM tags');
    return `; tags not updated (${awsErrorName(err)}: grant acm:ListTagsForCertificate and acm:AddTagsToCertificate)`;
  }
}

function errorLine(err: unknown): string {
  if (err instanceof CertkeeperError) return err.message;
  const name = awsErrorName(err);
  const msg = err instanceof Error ? err.message : String(err);
  return msg && msg !== name ? `${name}: ${msg}` : name;
}
