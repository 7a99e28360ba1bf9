/**
 * A small CloudFront on 127.0.0.1 speaking the REST/XML API (2020-05-31) for the calls `acm replace` makes:
 * GetDistributionConfig (the config and its ETag) and UpdateDistribution (PUT with If-Match). The real
 * @aws-sdk/client-cloudfront talks to it through AWS_ENDPOINT_URL_CLOUDFRONT or its `endpoint` option.
 *
 * Like CloudFront: every update changes the ETag; an update without If-Match is InvalidIfMatchVersion, one with an
 * old ETag is 412 PreconditionFailed; the viewer certificate must be an ISSUED ACM certificate in us-east-1 with a
 * key CloudFront serves (else InvalidViewerCertificate). The config is kept as the XML the client sent, so a test
 * can see that nothing but the certificate changed. The ACM fake's InUseBy follows the distribution's certificate.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACCOUNT_ID, type FakeAcm } from './acm-server.js';

const NS = 'http://cloudfront.amazonaws.com/doc/2020-05-31/';
const CF_KEYS = ['RSA_2048', 'RSA_3072', 'RSA_4096', 'EC_prime256v1'];

export interface FakeDistributionSeed {
  id: string;
  aliases: string[];
  acmCertificateArn: string;
  comment?: string;
}

export interface FakeCloudFrontCall {
  op: string;
  method: string;
  path: string;
  status: number;
  ifMatch?: string;
}

export interface FakeCloudFront {
  url: string;
  calls: FakeCloudFrontCall[];
  seed(d: FakeDistributionSeed): string;
  /** The distribution's ARN, as ACM lists it in InUseBy. */
  arnOf(id: string): string;
  /** The config XML as stored (what the last UpdateDistribution sent). */
  configXml(id: string): string;
  etag(id: string): string;
  /** Right after the next GetDistributionConfig of `id`, someone else edits the distribution (new ETag, new comment). */
  editAfterNextRead(id: string, comment: string): void;
  /** Calls that change something (UpdateDistribution). */
  mutations(): FakeCloudFrontCall[];
  close(): Promise<void>;
}

interface Dist {
  id: string;
  config: string;
  etag: string;
  editAfterRead?: string;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const newEtag = () => `E${randomBytes(6).toString('hex').toUpperCase()}`;
const tag = (xml: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];

function template(d: FakeDistributionSeed): string {
  return `<CallerReference>certkeeper-test-${d.id}</CallerReference><Aliases><Quantity>${d.aliases.length}</Quantity><Items>${d.aliases.map((a) => `<CNAME>${esc(a)}</CNAME>`).join('')}</Items></Aliases><DefaultRootObject>index.html</DefaultRootObject><Origins><Quantity>1</Quantity><Items><Origin><Id>web</Id><DomainName>origin.example.test</DomainName><OriginPath></OriginPath><CustomHeaders><Quantity>0</Quantity></CustomHeaders><CustomOriginConfig><HTTPPort>80</HTTPPort><HTTPSPort>443</HTTPSPort><OriginProtocolPolicy>https-only</OriginProtocolPolicy></CustomOriginConfig></Origin></Items></Origins><DefaultCacheBehavior><TargetOriginId>web</TargetOriginId><ViewerProtocolPolicy>redirect-to-https</ViewerProtocolPolicy><CachePolicyId>658327ea-f89d-4fab-a63d-7e88639e58f6</CachePolicyId><Compress>true</Compress></DefaultCacheBehavior><Comment>${esc(d.comment ?? 'certkeeper test distribution')}</Comment><PriceClass>PriceClass_100</PriceClass><Enabled>true</Enabled><ViewerCertificate><CloudFrontDefaultCertificate>false</CloudFrontDefaultCertificate><ACMCertificateArn>${esc(d.acmCertificateArn)}</ACMCertificateArn><SSLSupportMethod>sni-only</SSLSupportMethod><MinimumProtocolVersion>TLSv1.2_2021</MinimumProtocolVersion><Certificate>${esc(d.acmCertificateArn)}</Certificate><CertificateSource>acm</CertificateSource></ViewerCertificate><HttpVersion>http2</HttpVersion><IsIPV6Enabled>true</IsIPV6Enabled>`;
}

export async function startFakeCloudFront(opts: { acm?: FakeAcm } = {}): Promise<FakeCloudFront> {
  const dists = new Map<string, Dist>();
  const calls: FakeCloudFrontCall[] = [];
  const arnOf = (id: string) => `arn:aws:cloudfront::${ACCOUNT_ID}:distribution/${id}`;
  const sync = (d: Dist) => {
    const arn = tag(d.config, 'ACMCertificateArn');
    opts.acm?.setInUse(arnOf(d.id), arn ? [arn] : []);
  };

  function get(id: string): Dist {
    const d = dists.get(id);
    if (!d) throw new ApiError(404, 'NoSuchDistribution', 'The specified distribution does not exist.');
    return d;
  }

  function update(d: Dist, body: string, ifMatch: string | undefined): string {
    if (!ifMatch)
      throw new ApiError(400, 'InvalidIfMatchVersion', 'The If-Match version is missing or not valid.');
    if (ifMatch !== d.etag)
      throw new ApiError(
        412,
        'PreconditionFailed',
        'The precondition given in one or more of the request-header fields evaluated to false.',
      );
    const inner = /<DistributionConfig[^>]*>([\s\S]*)<\/DistributionConfig>/.exec(body)?.[1];
    if (!inner) throw new ApiError(400, 'MalformedInput', 'Missing DistributionConfig');
    if (tag(inner, 'CallerReference') !== tag(d.config, 'CallerReference'))
      throw new ApiError(400, 'IllegalUpdate', 'CallerReference cannot be changed.');
    const arn = tag(inner, 'ACMCertificateArn');
    if (arn) {
      const cert = opts.acm?.certificates.get(arn);
      const usable = cert?.region === 'us-east-1' && cert.status === 'ISSUED';
      if (opts.acm && !usable)
        throw new ApiError(
          400,
          'InvalidViewerCertificate',
          "The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, or doesn't include a valid certificate chain.",
        );
      if (cert && !CF_KEYS.includes(cert.keyAlgorithm))
        throw new ApiError(
          400,
          'InvalidViewerCertificate',
          `The certificate key algorithm ${cert.keyAlgorithm} is not supported.`,
        );
      const cfCert = tag(inner, 'Certificate');
      if (cfCert && cfCert !== arn)
        throw new ApiError(
          400,
          'InvalidViewerCertificate',
          'ViewerCertificate.Certificate and ACMCertificateArn disagree.',
        );
    }
    d.config = inner;
    d.etag = newEtag();
    sync(d);
    return `<?xml version="1.0" encoding="UTF-8"?>\n<Distribution xmlns="${NS}"><Id>${d.id}</Id><ARN>${arnOf(d.id)}</ARN><Status>InProgress</Status><LastModifiedTime>${new Date().toISOString()}</LastModifiedTime><InProgressInvalidationBatches>0</InProgressInvalidationBatches><DomainName>d${d.id.toLowerCase()}.cloudfront.net</DomainName><DistributionConfig>${d.config}</DistributionConfig></Distribution>`;
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const ifMatch = req.headers['if-match'] as string | undefined;
      const call: FakeCloudFrontCall = {
        op: 'Unknown',
        method: req.method ?? 'GET',
        path: url.pathname,
        status: 200,
        ...(ifMatch && { ifMatch }),
      };
      calls.push(call);
      const requestId = randomBytes(16).toString('hex');
      const headers: Record<string, string | number> = {
        'content-type': 'text/xml',
        'x-amz-request-id': requestId,
      };
      let out: string;
      try {
        if (
          !/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/us-east-1\/cloudfront\//.test(
            String(req.headers.authorization ?? ''),
          )
        )
          throw new ApiError(403, 'MissingAuthenticationToken', 'Missing Authentication Token');
        const m = /^\/2020-05-31\/distribution\/([A-Z0-9]+)\/config$/.exec(url.pathname);
        if (!m)
          throw new ApiError(
            404,
            'UnknownOperation',
            `fake CloudFront does not implement ${req.method} ${url.pathname}`,
          );
        const d = get(m[1]!);
        if (req.method === 'GET') {
          call.op = 'GetDistributionConfig';
          out = `<?xml version="1.0" encoding="UTF-8"?>\n<DistributionConfig xmlns="${NS}">${d.config}</DistributionConfig>`;
          headers.etag = d.etag;
          if (d.editAfterRead !== undefined) {
            d.config = d.config.replace(
              /<Comment>[^<]*<\/Comment>/,
              `<Comment>${esc(d.editAfterRead)}</Comment>`,
            );
            d.etag = newEtag();
            d.editAfterRead = undefined;
          }
        } else if (req.method === 'PUT') {
          call.op = 'UpdateDistribution';
          out = update(d, Buffer.concat(chunks).toString('utf8'), ifMatch);
          headers.etag = d.etag;
        } else throw new ApiError(405, 'MethodNotAllowed', `${req.method} is not allowed`);
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', String(err));
        call.status = e.status;
        out = `<?xml version="1.0"?>\n<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${e.code}</Code><Message>${esc(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
      }
      headers['content-length'] = Buffer.byteLength(out);
      res.writeHead(call.status, headers);
      res.end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    seed(s) {
      const d: Dist = { id: s.id, config: template(s), etag: newEtag() };
      dists.set(s.id, d);
      sync(d);
      return arnOf(s.id);
    },
    arnOf,
    configXml: (id) => get(id).config,
    etag: (id) => get(id).etag,
    editAfterNextRead(id, comment) {
      get(id).editAfterRead = comment;
    },
    mutations: () => calls.filter((c) => c.op === 'UpdateDistribution'),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
