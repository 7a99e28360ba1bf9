/**
 * A small AWS Certificate Manager on 127.0.0.1 speaking the awsJson1_1 wire protocol the real
 * @aws-sdk/client-acm uses: `POST /`, `X-Amz-Target: CertificateManager.<Operation>`,
 * `Content-Type: application/x-amz-json-1.1`, blobs as base64, timestamps as epoch seconds, errors as
 * `{"__type": "...", "message": "..."}` with a 400 status (so the SDK's own retry sees ThrottlingException).
 *
 * The region of each request is read from the SigV4 credential scope, so one server answers for many regions.
 * Imports are checked the way ACM checks them (one leaf, matching unencrypted key, importable key algorithm,
 * valid now, same algorithm on re-import, no tags on re-import) and the PEM is parsed to fill Serial, NotAfter,
 * KeyAlgorithm, DomainName and SubjectAlternativeNames.
 *
 * RequestCertificate (DNS validation) behaves like ACM's: the IdempotencyToken returns the same ARN for an hour, the
 * validation CNAMEs appear in DomainValidationOptions only after a few DescribeCertificate calls, and the
 * certificate turns ISSUED only once every CNAME is found through `cnameLookup` (the Route53 fake's records).
 * DeleteCertificate refuses a certificate that something uses (ResourceInUseException). The CloudFront and ELBv2
 * fakes report what uses a certificate through `setInUse`, so InUseBy follows their swaps.
 */
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const ACCOUNT_ID = '123456789012';

export type FakeType = 'IMPORTED' | 'AMAZON_ISSUED' | 'PRIVATE';
export type FakeStatus =
  | 'ISSUED'
  | 'PENDING_VALIDATION'
  | 'EXPIRED'
  | 'INACTIVE'
  | 'REVOKED'
  | 'FAILED'
  | 'VALIDATION_TIMED_OUT';

export interface FakeCertificate {
  arn: string;
  region: string;
  type: FakeType;
  status: FakeStatus;
  domainName: string;
  subjectAlternativeNames: string[];
  /** ACM spelling: colon-separated lower-case hex. */
  serial?: string;
  notBefore?: Date;
  notAfter?: Date;
  keyAlgorithm: string;
  createdAt: Date;
  importedAt?: Date;
  issuedAt?: Date;
  inUseBy: string[];
  renewalEligibility: 'ELIGIBLE' | 'INELIGIBLE';
  validationMethod?: 'EMAIL' | 'DNS' | 'HTTP';
  renewalStatus?: string;
  renewalStatusReason?: string;
  tags: { Key: string; Value?: string }[];
  /** What the last import sent, decoded (tests assert leaf-only / intermediates-only). */
  lastImport?: { certificate: string; chain?: string; privateKeyBytes: number };
  /** Requested certificates: the CNAME per validated name, and after how many DescribeCertificate calls it shows. */
  validation?: {
    records: { domain: string; name: string; value: string }[];
    shownAfter: number;
    describes: number;
  };
  failureReason?: string;
  /** Options.CertificateTransparencyLoggingPreference (ACM-issued certificates). */
  transparencyLogging?: 'ENABLED' | 'DISABLED';
}

export interface SeedInput extends Partial<Omit<FakeCertificate, 'arn'>> {
  arn?: string;
  domainName: string;
}

export interface RecordedRequest {
  op: string;
  region: string;
  body: Record<string, unknown>;
}

export interface FakeAcm {
  /** Base URL for the SDK's `endpoint` option / AWS_ENDPOINT_URL_ACM. */
  url: string;
  certificates: Map<string, FakeCertificate>;
  requests: RecordedRequest[];
  /** Answer the next `count` requests (of `op`, or any) with ThrottlingException. */
  throttle(count: number, op?: string): void;
  /** Change what DescribeCertificate returns (e.g. an old serial) while the function is set. */
  tamperDescribe?: (detail: Record<string, unknown>, cert: FakeCertificate) => Record<string, unknown>;
  /** Answer the next `count` requests of `op` with this error. */
  failNext(op: string, count: number, type: string, message: string, status?: number): void;
  /** Forget pending throttles and failures. */
  clearFailures(): void;
  seed(input: SeedInput): FakeCertificate;
  /** `resource` (a distribution or load balancer ARN) now uses exactly these certificates. */
  setInUse(resource: string, arns: string[]): void;
  /** Requests that change something (RequestCertificate, DeleteCertificate, ImportCertificate, AddTagsToCertificate). */
  mutations(): RecordedRequest[];
  ops(): string[];
  close(): Promise<void>;
}

export interface FakeAcmOptions {
  /** Page size ListCertificates uses when the caller gives no MaxItems (real ACM: up to 1000). Small to test paging. */
  defaultPageSize?: number;
  /** Clock used for "valid now" checks and timestamps. */
  now?: () => Date;
  /** What DNS says a CNAME name points at (the Route53 fake's records); requested certificates validate through it. */
  cnameLookup?: (name: string) => string | undefined;
  /** DescribeCertificate calls before a requested certificate shows its validation records (default 1). */
  recordsAfterDescribes?: number;
  /** A FailureReason (e.g. CAA_ERROR) for a requested certificate: it turns FAILED instead of ISSUED. */
  failureFor?: (cert: FakeCertificate) => string | undefined;
  /** Called when a requested certificate turns ISSUED (tests set its serial to the one a local TLS server presents). */
  onIssued?: (cert: FakeCertificate) => void;
}

class AcmError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const ALL_KEY_TYPES = [
  'RSA_1024',
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'EC_prime256v1',
  'EC_secp384r1',
  'EC_secp521r1',
];
/** ListCertificates without Includes.keyTypes shows only these (ACM API reference, Filters.keyTypes). */
const DEFAULT_KEY_TYPES = ['RSA_1024', 'RSA_2048'];
const MUTATING = new Set([
  'RequestCertificate',
  'DeleteCertificate',
  'ImportCertificate',
  'AddTagsToCertificate',
  'RemoveTagsFromCertificate',
]);
/** ACM keeps an IdempotencyToken for one hour. */
const IDEMPOTENCY_MS = 3600_000;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export async function startFakeAcm(options: FakeAcmOptions = {}): Promise<FakeAcm> {
  const now = options.now ?? (() => new Date());
  const pageSize = options.defaultPageSize ?? 1000;
  const certificates = new Map<string, FakeCertificate>();
  const requests: RecordedRequest[] = [];
  const failures: { op?: string; count: number; type: string; message: string; status: number }[] = [];
  const tokens = new Map<string, { arn: string; at: number; key: string }>();

  const fake: FakeAcm = {
    url: '',
    certificates,
    requests,
    throttle(count, op) {
      failures.push({ op, count, type: 'ThrottlingException', message: 'Rate exceeded', status: 400 });
    },
    failNext(op, count, type, message, status = 400) {
      failures.push({ op, count, type, message, status });
    },
    clearFailures() {
      failures.length = 0;
    },
    seed(input) {
      const region = input.region ?? 'us-east-1';
      const created = input.createdAt ?? now();
      const cert: FakeCertificate = {
        arn: input.arn ?? newArn(region),
        region,
        type: input.type ?? 'AMAZON_ISSUED',
        status: input.status ?? 'ISSUED',
        domainName: input.domainName,
        subjectAlternativeNames: input.subjectAlternativeNames ?? [input.domainName],
        serial: input.serial,
        notBefore: input.notBefore,
        notAfter: input.notAfter,
        keyAlgorithm: input.keyAlgorithm ?? 'RSA_2048',
        createdAt: created,
        importedAt: input.importedAt ?? (input.type === 'IMPORTED' ? created : undefined),
        issuedAt: input.issuedAt,
        inUseBy: input.inUseBy ?? [],
        renewalEligibility:
          input.renewalEligibility ?? (input.type === 'AMAZON_ISSUED' ? 'ELIGIBLE' : 'INELIGIBLE'),
        validationMethod: input.validationMethod ?? (input.type === 'AMAZON_ISSUED' ? 'DNS' : undefined),
        renewalStatus: input.renewalStatus,
        renewalStatusReason: input.renewalStatusReason,
        tags: input.tags ?? [],
        lastImport: input.lastImport,
        transparencyLogging: input.transparencyLogging,
      };
      certificates.set(cert.arn, cert);
      return cert;
    },
    setInUse(resource, arns) {
      for (const c of certificates.values()) {
        const uses = arns.includes(c.arn);
        const has = c.inUseBy.includes(resource);
        if (uses && !has) c.inUseBy.push(resource);
        if (!uses && has) c.inUseBy = c.inUseBy.filter((r) => r !== resource);
      }
    },
    mutations: () => requests.filter((r) => MUTATING.has(r.op)),
    ops: () => requests.map((r) => r.op),
    close: () => new Promise((res) => server.close(() => res())),
  };

  function takeFailure(op: string) {
    const f = failures.find((x) => x.count > 0 && (x.op === undefined || x.op === op));
    if (!f) return undefined;
    f.count--;
    return f;
  }

  const handlers: Record<string, (body: Record<string, unknown>, region: string) => unknown> = {
    ImportCertificate: (b, region) => importCertificate(b, region),
    RequestCertificate: (b, region) => requestCertificate(b, region),
    DeleteCertificate: (b, region) => {
      const cert = find(b.CertificateArn, region);
      if (cert.inUseBy.length > 0) {
        throw new AcmError(
          'ResourceInUseException',
          `Certificate ${cert.arn} in account ${ACCOUNT_ID} is in use.`,
        );
      }
      certificates.delete(cert.arn);
      return {};
    },
    DescribeCertificate: (b, region) => {
      const cert = find(b.CertificateArn, region);
      progress(cert);
      const detail = describe(cert);
      return { Certificate: fake.tamperDescribe ? fake.tamperDescribe(detail, cert) : detail };
    },
    ListCertificates: (b, region) => listCertificates(b, region),
    ListTagsForCertificate: (b, region) => ({ Tags: find(b.CertificateArn, region).tags }),
    AddTagsToCertificate: (b, region) => {
      const cert = find(b.CertificateArn, region);
      const tags = checkTags(b.Tags);
      if (tags.length === 0)
        throw new AcmError('ValidationException', 'Tags must contain at least 1 element');
      for (const t of tags) {
        const i = cert.tags.findIndex((x) => x.Key === t.Key);
        if (i >= 0) cert.tags[i] = t;
        else cert.tags.push(t);
      }
      if (cert.tags.length > 50)
        throw new AcmError('TooManyTagsException', 'the request contains too many tags');
      return {};
    },
  };

  function requestCertificate(b: Record<string, unknown>, region: string) {
    const domain = String(b.DomainName ?? '');
    if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain))
      throw new AcmError('InvalidDomainValidationOptionsException', `Invalid domain name ${domain}`);
    const sans = (b.SubjectAlternativeNames as string[] | undefined) ?? [domain];
    const names = [domain, ...sans.filter((n) => n !== domain)];
    const method = b.ValidationMethod ?? 'EMAIL';
    const alg = String(b.KeyAlgorithm ?? 'RSA_2048');
    if (!['RSA_2048', 'EC_prime256v1', 'EC_secp384r1'].includes(alg))
      throw new AcmError('ValidationException', `KeyAlgorithm ${alg} cannot be requested`);
    const token = b.IdempotencyToken === undefined ? undefined : String(b.IdempotencyToken);
    if (token !== undefined && !/^\w{1,32}$/.test(token))
      throw new AcmError(
        'ValidationException',
        'IdempotencyToken must match \\w+ and be at most 32 characters',
      );
    const key = JSON.stringify([region, names, method, alg]);
    const t = now().getTime();
    if (token !== undefined) {
      const prev = tokens.get(token);
      if (prev && t - prev.at < IDEMPOTENCY_MS && prev.key === key && certificates.has(prev.arn))
        return { CertificateArn: prev.arn };
    }
    const tags = b.Tags === undefined ? [] : checkTags(b.Tags);
    const rand = () => randomUUID().replaceAll('-', '');
    const cert = fake.seed({
      region,
      domainName: domain,
      subjectAlternativeNames: names,
      type: 'AMAZON_ISSUED',
      status: 'PENDING_VALIDATION',
      keyAlgorithm: alg,
      validationMethod: method === 'DNS' ? 'DNS' : 'EMAIL',
      renewalEligibility: 'INELIGIBLE',
      createdAt: now(),
      tags,
      transparencyLogging:
        (b.Options as { CertificateTransparencyLoggingPreference?: 'ENABLED' | 'DISABLED' } | undefined)
          ?.CertificateTransparencyLoggingPreference ?? 'ENABLED',
    });
    if (method === 'DNS') {
      const bases = [...new Set(names.map((n) => n.replace(/^\*\./, '')))];
      const records = bases.map((d) => ({
        domain: d,
        name: `_${rand()}.${d}.`,
        value: `_${rand()}.mhbtsbpdnt.acm-validations.aws.`,
      }));
      cert.validation = { records, shownAfter: options.recordsAfterDescribes ?? 1, describes: 0 };
    }
    if (token !== undefined) tokens.set(token, { arn: cert.arn, at: t, key });
    return { CertificateArn: cert.arn };
  }

  /** A requested certificate on DescribeCertificate: records show after a while; ISSUED once DNS has them. */
  function progress(c: FakeCertificate): void {
    const v = c.validation;
    if (!v || c.status !== 'PENDING_VALIDATION') return;
    v.describes++;
    if (v.describes <= v.shownAfter || !options.cnameLookup) return;
    const failure = options.failureFor?.(c);
    if (failure) {
      c.status = 'FAILED';
      c.failureReason = failure;
      return;
    }
    const norm = (n: string | undefined) => n?.toLowerCase().replace(/\.$/, '');
    if (!v.records.every((r) => norm(options.cnameLookup!(r.name)) === norm(r.value))) return;
    const t = now();
    c.status = 'ISSUED';
    c.issuedAt = t;
    c.notBefore = t;
    c.notAfter = new Date(t.getTime() + 198 * 86_400_000);
    c.serial = randomUUID().replaceAll('-', '').slice(0, 32).match(/../g)!.join(':');
    c.renewalEligibility = 'INELIGIBLE';
    options.onIssued?.(c);
  }

  function importCertificate(b: Record<string, unknown>, region: string) {
    const certPem = blob(b.Certificate, 'certificate');
    const keyPem = blob(b.PrivateKey, 'privateKey');
    const chainPem =
      b.CertificateChain === undefined ? undefined : blob(b.CertificateChain, 'certificateChain');
    const blocks = certPem.match(PEM_CERT) ?? [];
    if (blocks.length !== 1) {
      throw new AcmError(
        'ValidationException',
        'The certificate field must contain exactly one PEM certificate',
      );
    }
    let x: X509Certificate;
    try {
      x = new X509Certificate(blocks[0]!);
    } catch {
      throw new AcmError(
        'ValidationException',
        'Unable to parse certificate. Please ensure the certificate is in PEM format.',
      );
    }
    if (Buffer.byteLength(keyPem) > 5120)
      throw new AcmError('ValidationException', 'The private key is larger than 5 KB');
    let key: ReturnType<typeof createPrivateKey>;
    try {
      key = createPrivateKey(keyPem);
    } catch {
      throw new AcmError('ValidationException', 'The private key is not supported or is encrypted.');
    }
    const alg = algorithmOf(key);
    if (!alg) throw new AcmError('ValidationException', 'The certificate key algorithm is not supported.');
    if (!x.checkPrivateKey(key)) {
      throw new AcmError(
        'ValidationException',
        'The private key does not match the public key in the certificate.',
      );
    }
    if (chainPem !== undefined) {
      const chain = chainPem.match(PEM_CERT) ?? [];
      if (chain.length === 0)
        throw new AcmError('ValidationException', 'Unable to parse the certificate chain.');
      for (const c of chain) {
        if (new X509Certificate(c).fingerprint256 === x.fingerprint256) {
          throw new AcmError(
            'ValidationException',
            'The certificate chain must not contain the certificate itself.',
          );
        }
      }
    }
    const t = now();
    if (new Date(x.validFrom) > t || new Date(x.validTo) < t) {
      throw new AcmError('ValidationException', 'The certificate is expired or not yet valid.');
    }
    const sans = (x.subjectAltName ?? '')
      .split(/,\s*/)
      .filter((s) => s.startsWith('DNS:'))
      .map((s) => s.slice(4));
    const cn = /CN=([^\n,]+)/.exec(x.subject)?.[1];
    const fields = {
      serial: x.serialNumber
        .toLowerCase()
        .padStart(x.serialNumber.length + (x.serialNumber.length % 2), '0')
        .match(/../g)!
        .join(':'),
      notBefore: new Date(x.validFrom),
      notAfter: new Date(x.validTo),
      domainName: cn ?? sans[0] ?? '',
      subjectAlternativeNames: sans.length ? sans : cn ? [cn] : [],
      keyAlgorithm: alg,
      lastImport: { certificate: certPem, chain: chainPem, privateKeyBytes: Buffer.byteLength(keyPem) },
    };
    if (b.CertificateArn !== undefined) {
      const cert = find(b.CertificateArn, region);
      if (b.Tags !== undefined) {
        throw new AcmError('ValidationException', 'Tags cannot be applied when reimporting a certificate.');
      }
      if (cert.type !== 'IMPORTED') {
        throw new AcmError(
          'ValidationException',
          `Certificate ${cert.arn} is not an imported certificate and cannot be reimported.`,
        );
      }
      if (cert.keyAlgorithm !== alg) {
        throw new AcmError(
          'ValidationException',
          `The key algorithm of the certificate to reimport (${alg}) does not match the existing certificate (${cert.keyAlgorithm}).`,
        );
      }
      Object.assign(cert, fields, { importedAt: t, status: 'ISSUED' });
      return { CertificateArn: cert.arn };
    }
    const tags = b.Tags === undefined ? [] : checkTags(b.Tags);
    const cert = fake.seed({
      ...fields,
      region,
      type: 'IMPORTED',
      status: 'ISSUED',
      createdAt: t,
      importedAt: t,
      renewalEligibility: 'INELIGIBLE',
      tags,
    });
    return { CertificateArn: cert.arn };
  }

  function listCertificates(b: Record<string, unknown>, region: string) {
    const includes = (b.Includes ?? {}) as { keyTypes?: string[] };
    const keyTypes = includes.keyTypes ?? DEFAULT_KEY_TYPES;
    for (const k of keyTypes) {
      if (!ALL_KEY_TYPES.includes(k)) throw new AcmError('ValidationException', `Invalid key type: ${k}`);
    }
    const statuses = b.CertificateStatuses as string[] | undefined;
    const max = typeof b.MaxItems === 'number' ? b.MaxItems : pageSize;
    if (max < 1 || max > 1000)
      throw new AcmError('ValidationException', 'MaxItems must be between 1 and 1000');
    const all = [...certificates.values()].filter(
      (c) =>
        c.region === region &&
        keyTypes.includes(c.keyAlgorithm) &&
        (statuses === undefined || statuses.length === 0 || statuses.includes(c.status)),
    );
    let start = 0;
    if (b.NextToken !== undefined) {
      const decoded = Number(Buffer.from(String(b.NextToken), 'base64url').toString());
      if (!Number.isInteger(decoded) || decoded < 0)
        throw new AcmError('InvalidArgsException', 'The NextToken is invalid');
      start = decoded;
    }
    const page = all.slice(start, start + max);
    const next =
      start + max < all.length ? Buffer.from(String(start + max)).toString('base64url') : undefined;
    return {
      CertificateSummaryList: page.map((c) => ({
        CertificateArn: c.arn,
        DomainName: c.domainName,
        SubjectAlternativeNameSummaries: c.subjectAlternativeNames,
        HasAdditionalSubjectAlternativeNames: false,
        Status: c.status,
        Type: c.type,
        KeyAlgorithm: c.keyAlgorithm,
        InUse: c.inUseBy.length > 0,
        RenewalEligibility: c.renewalEligibility,
        ...time('NotBefore', c.notBefore),
        ...time('NotAfter', c.notAfter),
        ...time('CreatedAt', c.createdAt),
        ...time('ImportedAt', c.importedAt),
        ...time('IssuedAt', c.issuedAt),
      })),
      ...(next && { NextToken: next }),
    };
  }

  function describe(c: FakeCertificate): Record<string, unknown> {
    const v = c.validation;
    const shown = v && v.describes > v.shownAfter;
    const dvo =
      c.type === 'AMAZON_ISSUED'
        ? c.subjectAlternativeNames.map((d) => {
            const rec = shown ? v.records.find((r) => r.domain === d.replace(/^\*\./, '')) : undefined;
            return {
              DomainName: d,
              ValidationDomain: d,
              ValidationStatus: c.status === 'PENDING_VALIDATION' ? 'PENDING_VALIDATION' : 'SUCCESS',
              ValidationMethod: c.validationMethod ?? 'DNS',
              ...(c.validationMethod === 'EMAIL' && { ValidationEmails: [`admin@${d}`] }),
              ...(rec && { ResourceRecord: { Name: rec.name, Type: 'CNAME', Value: rec.value } }),
            };
          })
        : undefined;
    return {
      CertificateArn: c.arn,
      DomainName: c.domainName,
      SubjectAlternativeNames: c.subjectAlternativeNames,
      ...(dvo && { DomainValidationOptions: dvo }),
      ...(c.serial && { Serial: c.serial }),
      Subject: `CN=${c.domainName}`,
      ...time('CreatedAt', c.createdAt),
      ...time('ImportedAt', c.importedAt),
      ...time('IssuedAt', c.issuedAt),
      ...time('NotBefore', c.notBefore),
      ...time('NotAfter', c.notAfter),
      Status: c.status,
      KeyAlgorithm: c.keyAlgorithm,
      InUseBy: c.inUseBy,
      Type: c.type,
      RenewalEligibility: c.renewalEligibility,
      ...(c.failureReason && { FailureReason: c.failureReason }),
      ...(c.transparencyLogging && {
        Options: { CertificateTransparencyLoggingPreference: c.transparencyLogging },
      }),
      ...(c.type === 'AMAZON_ISSUED' &&
        c.renewalStatus && {
          RenewalSummary: {
            RenewalStatus: c.renewalStatus,
            DomainValidationOptions: dvo,
            ...(c.renewalStatusReason && { RenewalStatusReason: c.renewalStatusReason }),
            UpdatedAt: c.createdAt.getTime() / 1000,
          },
        }),
    };
  }

  function find(arnValue: unknown, region: string): FakeCertificate {
    const arn = String(arnValue ?? '');
    if (!/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/.test(arn)) {
      throw new AcmError('InvalidArnException', `String '${arn}' is not a valid ARN.`);
    }
    const cert = certificates.get(arn);
    if (!cert || cert.region !== region) {
      throw new AcmError('ResourceNotFoundException', `Could not find certificate ${arn}.`);
    }
    return cert;
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, { __type: 'InternalFailure', message: String(err) }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const op = target.startsWith('CertificateManager.') ? target.slice('CertificateManager.'.length) : '';
    if (req.method !== 'POST' || req.url !== '/') {
      return send(res, 404, { __type: 'UnknownOperationException', message: `${req.method} ${req.url}` });
    }
    if (req.headers['content-type'] !== 'application/x-amz-json-1.1') {
      return send(res, 400, {
        __type: 'SerializationException',
        message: 'expected application/x-amz-json-1.1',
      });
    }
    const scope = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/acm\/aws4_request/.exec(
      String(req.headers.authorization ?? ''),
    );
    if (!scope) {
      return send(res, 403, {
        __type: 'MissingAuthenticationTokenException',
        message: 'Missing Authentication Token',
      });
    }
    const region = scope[1]!;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return send(res, 400, { __type: 'SerializationException', message: 'body is not JSON' });
    }
    requests.push({ op, region, body });
    const handler = handlers[op];
    if (!handler)
      return send(res, 400, { __type: 'UnknownOperationException', message: `unknown operation ${op}` });
    const failure = takeFailure(op);
    if (failure) return send(res, failure.status, { __type: failure.type, message: failure.message });
    try {
      send(res, 200, handler(body, region));
    } catch (err) {
      if (err instanceof AcmError) return send(res, err.status, { __type: err.type, message: err.message });
      throw err;
    }
  }

  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

function send(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(text);
}

function newArn(region: string): string {
  return `arn:aws:acm:${region}:${ACCOUNT_ID}:certificate/${randomUUID()}`;
}

function time(name: string, d: Date | undefined): Record<string, number> {
  return d ? { [name]: d.getTime() / 1000 } : {};
}

function blob(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) {
    throw new AcmError(
      'ValidationException',
      `1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return Buffer.from(v, 'base64').toString('utf8');
}

function checkTags(v: unknown): { Key: string; Value?: string }[] {
  if (!Array.isArray(v)) throw new AcmError('ValidationException', 'Tags must be a list');
  const tags = v as { Key: string; Value?: string }[];
  for (const t of tags) {
    if (typeof t.Key !== 'string' || t.Key.length === 0 || t.Key.length > 128) {
      throw new AcmError('InvalidTagException', 'A tag key must be 1 to 128 characters');
    }
    if (t.Key.toLowerCase().startsWith('aws:'))
      throw new AcmError('InvalidTagException', 'Tag keys beginning with aws: are reserved');
  }
  if (tags.length > 50) throw new AcmError('TooManyTagsException', 'the request contains too many tags');
  return tags.map((t) => ({ Key: t.Key, ...(t.Value !== undefined && { Value: t.Value }) }));
}

function algorithmOf(key: ReturnType<typeof createPrivateKey>): string | undefined {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    return [1024, 2048, 3072, 4096].includes(d.modulusLength ?? 0) ? `RSA_${d.modulusLength}` : undefined;
  }
  if (key.asymmetricKeyType === 'ec') {
    return (
      { prime256v1: 'EC_prime256v1', secp384r1: 'EC_secp384r1', secp521r1: 'EC_secp521r1' } as Record<
        string,
        string
      >
    )[d.namedCurve ?? ''];
  }
  return undefined;
}
