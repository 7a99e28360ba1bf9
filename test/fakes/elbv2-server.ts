/**
 * A small Elastic Load Balancing v2 on 127.0.0.1 speaking the Query/XML protocol (2015-12-01) for the calls
 * `acm replace` makes: DescribeListeners, DescribeListenerCertificates, ModifyListener, AddListenerCertificates,
 * RemoveListenerCertificates. The real @aws-sdk/client-elastic-load-balancing-v2 talks to it through
 * AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 or its `endpoint` option.
 *
 * Like ELBv2: DescribeListenerCertificates lists the default certificate with IsDefault=true beside the SNI ones;
 * the default certificate cannot be removed with RemoveListenerCertificates (OperationNotPermitted); a certificate
 * must exist in the ACM fake (CertificateNotFound). The ACM fake's InUseBy lists the load balancer while any of its
 * listeners uses a certificate.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACCOUNT_ID, type FakeAcm } from './acm-server.js';

const NS = 'http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/';
const MUTATING = new Set(['ModifyListener', 'AddListenerCertificates', 'RemoveListenerCertificates']);

export interface FakeListenerSeed {
  port: number;
  protocol?: 'HTTPS' | 'TLS' | 'HTTP';
  defaultCertificate?: string;
  sniCertificates?: string[];
}

export interface FakeElbCall {
  op: string;
  region: string;
  params: Record<string, string>;
  status: number;
}

export interface FakeListener {
  arn: string;
  loadBalancerArn: string;
  port: number;
  protocol: string;
  defaultCertificate?: string;
  sni: string[];
}

export interface FakeElbv2 {
  url: string;
  calls: FakeElbCall[];
  /** Seeds an application load balancer named `name` in `region`; returns its ARN. */
  seedLoadBalancer(name: string, listeners: FakeListenerSeed[], region?: string): string;
  listeners(loadBalancerArn: string): FakeListener[];
  mutations(): FakeElbCall[];
  close(): Promise<void>;
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
const hex = (n: number) => randomBytes(n).toString('hex');

/** `Certificates.member.1.CertificateArn=a&Certificates.member.2.CertificateArn=b` → [a, b]. */
function members(params: Record<string, string>, prefix: string, field?: string): string[] {
  const out: [number, string][] = [];
  const re = new RegExp(`^${prefix.replaceAll('.', '\\.')}\\.member\\.(\\d+)${field ? `\\.${field}` : ''}$`);
  for (const [k, v] of Object.entries(params)) {
    const m = re.exec(k);
    if (m) out.push([Number(m[1]), v]);
  }
  return out.sort((a, b) => a[0] - b[0]).map((x) => x[1]);
}

export async function startFakeElbv2(opts: { acm?: FakeAcm } = {}): Promise<FakeElbv2> {
  const listeners = new Map<string, FakeListener>();
  const calls: FakeElbCall[] = [];

  const sync = (lbArn: string) => {
    const used = new Set<string>();
    for (const l of listeners.values()) {
      if (l.loadBalancerArn !== lbArn) continue;
      if (l.defaultCertificate) used.add(l.defaultCertificate);
      for (const c of l.sni) used.add(c);
    }
    opts.acm?.setInUse(lbArn, [...used]);
  };

  function listener(arn: string | undefined): FakeListener {
    const l = arn ? listeners.get(arn) : undefined;
    if (!l) throw new ApiError(400, 'ListenerNotFound', `One or more listeners not found`);
    return l;
  }

  function checkCert(arn: string, region: string): void {
    if (!opts.acm) return;
    const c = opts.acm.certificates.get(arn);
    if (!c || c.region !== region || c.status !== 'ISSUED')
      throw new ApiError(400, 'CertificateNotFound', `Certificate '${arn}' not found`);
  }

  const listenerXml = (l: FakeListener) =>
    `<member><LoadBalancerArn>${esc(l.loadBalancerArn)}</LoadBalancerArn><Protocol>${l.protocol}</Protocol><Port>${l.port}</Port><ListenerArn>${esc(l.arn)}</ListenerArn>${l.defaultCertificate ? `<Certificates><member><CertificateArn>${esc(l.defaultCertificate)}</CertificateArn></member></Certificates><SslPolicy>ELBSecurityPolicy-TLS13-1-2-2021-06</SslPolicy>` : ''}<DefaultActions><member><Type>forward</Type><TargetGroupArn>arn:aws:elasticloadbalancing:us-east-1:${ACCOUNT_ID}:targetgroup/web/${hex(8)}</TargetGroupArn><Order>1</Order></member></DefaultActions></member>`;

  function handle(op: string, p: Record<string, string>, region: string): string {
    switch (op) {
      case 'DescribeListeners': {
        const lb = p.LoadBalancerArn;
        const arns = members(p, 'ListenerArns');
        const list = [...listeners.values()].filter(
          (l) => (lb ? l.loadBalancerArn === lb : true) && (arns.length ? arns.includes(l.arn) : true),
        );
        if (lb && !list.length && ![...listeners.values()].some((l) => l.loadBalancerArn === lb))
          throw new ApiError(400, 'LoadBalancerNotFound', `Load balancer '${lb}' not found`);
        return `<Listeners>${list.map(listenerXml).join('')}</Listeners>`;
      }
      case 'DescribeListenerCertificates': {
        const l = listener(p.ListenerArn);
        const certs = [
          ...(l.defaultCertificate ? [{ arn: l.defaultCertificate, def: true }] : []),
          ...l.sni.map((arn) => ({ arn, def: false })),
        ];
        return `<Certificates>${certs.map((c) => `<member><CertificateArn>${esc(c.arn)}</CertificateArn><IsDefault>${c.def}</IsDefault></member>`).join('')}</Certificates>`;
      }
      case 'ModifyListener': {
        const l = listener(p.ListenerArn);
        const certs = members(p, 'Certificates', 'CertificateArn');
        if (certs.length > 1)
          throw new ApiError(400, 'TooManyCertificates', 'A listener has exactly one default certificate');
        if (certs.length === 1) {
          checkCert(certs[0]!, region);
          l.defaultCertificate = certs[0];
          l.sni = l.sni.filter((c) => c !== certs[0]);
        }
        sync(l.loadBalancerArn);
        return `<Listeners>${listenerXml(l)}</Listeners>`;
      }
      case 'AddListenerCertificates': {
        const l = listener(p.ListenerArn);
        const certs = members(p, 'Certificates', 'CertificateArn');
        for (const c of certs) checkCert(c, region);
        for (const c of certs) if (c !== l.defaultCertificate && !l.sni.includes(c)) l.sni.push(c);
        sync(l.loadBalancerArn);
        return `<Certificates>${certs.map((c) => `<member><CertificateArn>${esc(c)}</CertificateArn></member>`).join('')}</Certificates>`;
      }
      case 'RemoveListenerCertificates': {
        const l = listener(p.ListenerArn);
        const certs = members(p, 'Certificates', 'CertificateArn');
        if (certs.includes(l.defaultCertificate ?? ''))
          throw new ApiError(400, 'OperationNotPermitted', 'The default certificate cannot be removed');
        l.sni = l.sni.filter((c) => !certs.includes(c));
        sync(l.loadBalancerArn);
        return '';
      }
      default:
        throw new ApiError(400, 'InvalidAction', `fake ELBv2 does not implement ${op}`);
    }
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      const scope = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/elasticloadbalancing\/aws4_request/.exec(
        String(req.headers.authorization ?? ''),
      );
      const op = params.Action ?? 'Unknown';
      const call: FakeElbCall = { op, region: scope?.[1] ?? '', params, status: 200 };
      calls.push(call);
      const requestId = `${hex(4)}-${hex(2)}-${hex(2)}-${hex(2)}-${hex(6)}`;
      let out: string;
      try {
        if (req.method !== 'POST' || !scope)
          throw new ApiError(403, 'MissingAuthenticationToken', 'Missing Authentication Token');
        if (params.Version !== '2015-12-01')
          throw new ApiError(400, 'InvalidParameterValue', `unknown Version ${params.Version}`);
        const inner = handle(op, params, scope[1]!);
        out = `<${op}Response xmlns="${NS}"><${op}Result>${inner}</${op}Result><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${op}Response>`;
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalFailure', String(err));
        call.status = e.status;
        out = `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${e.code}</Code><Message>${esc(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
      }
      res.writeHead(call.status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    seedLoadBalancer(name, seeds, region = 'us-east-1') {
      const lbArn = `arn:aws:elasticloadbalancing:${region}:${ACCOUNT_ID}:loadbalancer/app/${name}/${hex(8)}`;
      for (const s of seeds) {
        const arn = `${lbArn.replace(':loadbalancer/', ':listener/')}/${hex(8)}`;
        listeners.set(arn, {
          arn,
          loadBalancerArn: lbArn,
          port: s.port,
          protocol: s.protocol ?? 'HTTPS',
          defaultCertificate: s.defaultCertificate,
          sni: [...(s.sniCertificates ?? [])],
        });
      }
      sync(lbArn);
      return lbArn;
    },
    listeners: (lb) =>
      [...listeners.values()].filter((l) => l.loadBalancerArn === lb).map((l) => ({ ...l, sni: [...l.sni] })),
    mutations: () => calls.filter((c) => MUTATING.has(c.op)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
