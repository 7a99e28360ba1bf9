/**
 * A small ACME server (RFC 8555) that lies, HTTPS on 127.0.0.1 with a throw-away CA (give `caBundlePath` to
 * acme.caBundle). It accepts every account and every challenge without validating anything, and can:
 *   - hand out chosen challenge tokens ("../../victim"),
 *   - add authorizations for identifiers nobody ordered ("$(touch x);a.example.com"),
 *   - answer the order with a certificate that is not the ordered one (other names, other key, a chain that does not
 *     link, an expired leaf) — or the right one, issued from the CSR, so a passing case proves the fake works,
 *   - forget every account (accountDoesNotExist) until told otherwise.
 * JWS signatures are not checked: the point is what the client does with the answers.
 */
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createTestCA, issueLeaf, type TestCA } from '../../src/crypto/selfsigned.js';

const crypto = webcrypto as unknown as NonNullable<
  Parameters<typeof x509.X509CertificateGenerator.create>[1]
>;

export type IssueMode = 'csr' | 'foreign-names' | 'foreign-key' | 'broken-chain' | 'expired';

export interface LyingAcmeOptions {
  /** Token for each authorization's challenges, by identifier value (default: a random RFC 8555 token). */
  token?: (identifier: string) => string;
  /** Identifiers (dns) added to every order's authorizations. */
  injectIdentifiers?: string[];
  /** What the certificate URL answers (default: 'csr', the honest answer). */
  issue?: IssueMode;
}

export interface LyingAcmeServer {
  directoryUrl: string;
  caBundlePath: string;
  options: LyingAcmeOptions;
  /** Forgets every account registered so far (a CA reset): their requests get accountDoesNotExist. */
  forgetAccounts(): void;
  /** newAccount calls seen. */
  accountsCreated: number;
  ordersCreated: number;
  /** Authorizations the client deactivated. */
  deactivations: number;
  stop(): Promise<void>;
}

interface Authz {
  identifier: { type: string; value: string };
  wildcard: boolean;
  status: string;
  token: string;
}
interface Order {
  identifiers: { type: string; value: string }[];
  authzIds: string[];
  status: string;
  certPem?: string;
}

const b64json = (s: string): Record<string, unknown> =>
  s ? (JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as Record<string, unknown>) : {};
const randomToken = () => randomBytes(32).toString('base64url');

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function issueFrom(ca: TestCA, csrB64: string, mode: IssueMode, otherCa: TestCA): Promise<string> {
  const csr = new x509.Pkcs10CertificateRequest(Buffer.from(csrB64, 'base64url'));
  const sanExt = csr.extensions.find((e) => e.type === '2.5.29.17');
  const asked: string[] = sanExt
    ? new x509.SubjectAlternativeNameExtension(sanExt.rawData).names.toJSON().map((n) => n.value)
    : [];
  if (mode === 'foreign-key') {
    const leaf = await issueLeaf(ca, { altNames: asked, days: 30 });
    return leaf.certPem + ca.certPem;
  }
  const names = mode === 'foreign-names' ? ['someone-else.example.org'] : asked;
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey(
    'pkcs8',
    Buffer.from(ca.keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64'),
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  );
  const publicKey = await csr.publicKey.export(crypto);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomBytes(8)
        .toString('hex')
        .replace(/^[89a-f]/, '1'),
      subject: `CN=${names[0] ?? 'x'}`,
      issuer: caCert.subject,
      publicKey,
      signingKey: caKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      notBefore: new Date(now - (mode === 'expired' ? 40 : 1) * 86_400_000),
      notAfter: new Date(now + (mode === 'expired' ? -10 : 30) * 86_400_000),
      extensions: [
        new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns' as const, value }))),
        new x509.BasicConstraintsExtension(false, undefined, true),
      ],
    },
    crypto,
  );
  const chainTail = mode === 'broken-chain' ? otherCa.certPem : ca.certPem;
  return `${cert.toString('pem')}\n${chainTail}`;
}

export async function startLyingAcmeServer(options: LyingAcmeOptions = {}): Promise<LyingAcmeServer> {
  const dir = await mkdtemp(join(tmpdir(), 'ck-liar-'));
  const tlsCa = await createTestCA({ commonName: 'lying ACME server HTTPS CA' });
  const tlsLeaf = await issueLeaf(tlsCa, { altNames: ['127.0.0.1', 'localhost'], days: 2 });
  const caBundlePath = join(dir, 'ca.pem');
  await writeFile(caBundlePath, tlsCa.certPem);
  const issuingCa = await createTestCA({ commonName: 'lying ACME issuing CA' });
  const otherCa = await createTestCA({ commonName: 'an unrelated CA' });

  const accounts = new Set<string>();
  const authzs = new Map<string, Authz>();
  const orders = new Map<string, Order>();
  let base = '';
  const self: LyingAcmeServer = {
    directoryUrl: '',
    caBundlePath,
    options,
    forgetAccounts: () => accounts.clear(),
    accountsCreated: 0,
    ordersCreated: 0,
    deactivations: 0,
    stop: async () => {},
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'replay-nonce': randomToken(),
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(text);
  };
  const problem = (res: ServerResponse, status: number, type: string, detail: string) =>
    send(
      res,
      status,
      { type: `urn:ietf:params:acme:error:${type}`, detail, status },
      {
        'content-type': 'application/problem+json',
      },
    );
  const authzJson = (id: string) => {
    const a = authzs.get(id)!;
    return {
      identifier: a.identifier,
      status: a.status,
      expires: new Date(Date.now() + 86_400_000).toISOString(),
      ...(a.wildcard ? { wildcard: true } : {}),
      challenges: ['http-01', 'dns-01'].map((type) => ({
        type,
        url: `${base}/chall/${id}/${type}`,
        token: a.token,
        status: a.status === 'valid' ? 'valid' : 'pending',
      })),
    };
  };
  const orderJson = (id: string) => {
    const o = orders.get(id)!;
    const ready = o.authzIds.every((a) => authzs.get(a)?.status === 'valid');
    if (o.status === 'pending' && ready) o.status = 'ready';
    return {
      status: o.status,
      expires: new Date(Date.now() + 86_400_000).toISOString(),
      identifiers: o.identifiers,
      authorizations: o.authzIds.map((a) => `${base}/authz/${a}`),
      finalize: `${base}/finalize/${id}`,
      ...(o.certPem ? { certificate: `${base}/cert/${id}` } : {}),
    };
  };

  const server = createServer({ cert: tlsLeaf.certPem, key: tlsLeaf.keyPem }, (req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === '/dir') {
        return send(res, 200, {
          newNonce: `${base}/nonce`,
          newAccount: `${base}/new-acct`,
          newOrder: `${base}/new-order`,
          revokeCert: `${base}/revoke`,
          keyChange: `${base}/key-change`,
        });
      }
      if (path === '/nonce') {
        res.writeHead(req.method === 'HEAD' ? 200 : 204, {
          'replay-nonce': randomToken(),
          'cache-control': 'no-store',
        });
        return res.end();
      }
      const jws = JSON.parse((await readBody(req)) || '{}') as { protected?: string; payload?: string };
      const prot = b64json(jws.protected ?? '');
      const payload = b64json(jws.payload ?? '');
      if (path === '/new-acct') {
        const id = randomBytes(6).toString('hex');
        accounts.add(id);
        self.accountsCreated++;
        return send(
          res,
          201,
          { status: 'valid', contact: payload.contact ?? [], orders: `${base}/orders/${id}` },
          {
            location: `${base}/acct/${id}`,
          },
        );
      }
      const kid = typeof prot.kid === 'string' ? prot.kid : '';
      const acctId = kid.split('/').pop() ?? '';
      if (!accounts.has(acctId)) {
        return problem(res, 400, 'accountDoesNotExist', 'no account with that key is known here');
      }
      if (path.startsWith('/acct/')) return send(res, 200, { status: 'valid' });
      if (path === '/new-order') {
        self.ordersCreated++;
        const id = randomBytes(6).toString('hex');
        const identifiers = (payload.identifiers as { type: string; value: string }[]) ?? [];
        const all = [
          ...identifiers,
          ...(options.injectIdentifiers ?? []).map((value) => ({ type: 'dns', value })),
        ];
        const authzIds = all.map((ident) => {
          const aid = randomBytes(6).toString('hex');
          const wildcard = ident.value.startsWith('*.');
          const value = wildcard ? ident.value.slice(2) : ident.value;
          authzs.set(aid, {
            identifier: { type: ident.type, value },
            wildcard,
            status: 'pending',
            token: options.token?.(value) ?? randomToken(),
          });
          return aid;
        });
        orders.set(id, { identifiers, authzIds, status: 'pending' });
        return send(res, 201, orderJson(id), { location: `${base}/order/${id}` });
      }
      let m = /^\/authz\/(\w+)$/.exec(path);
      if (m && authzs.has(m[1]!)) {
        const a = authzs.get(m[1]!)!;
        if (payload.status === 'deactivated') {
          a.status = 'deactivated';
          self.deactivations++;
        }
        return send(res, 200, authzJson(m[1]!));
      }
      m = /^\/chall\/(\w+)\/([\w-]+)$/.exec(path);
      if (m && authzs.has(m[1]!)) {
        authzs.get(m[1]!)!.status = 'valid'; // the lie: nothing is checked
        return send(
          res,
          200,
          { ...authzJson(m[1]!).challenges.find((c) => c.type === m![2])!, status: 'valid' },
          {
            link: `<${base}/authz/${m[1]}>;rel="up"`,
          },
        );
      }
      m = /^\/order\/(\w+)$/.exec(path);
      if (m && orders.has(m[1]!)) return send(res, 200, orderJson(m[1]!));
      m = /^\/finalize\/(\w+)$/.exec(path);
      if (m && orders.has(m[1]!)) {
        const o = orders.get(m[1]!)!;
        o.certPem = await issueFrom(issuingCa, String(payload.csr), options.issue ?? 'csr', otherCa);
        o.status = 'valid';
        return send(res, 200, orderJson(m[1]!), { location: `${base}/order/${m[1]}` });
      }
      m = /^\/cert\/(\w+)$/.exec(path);
      if (m && orders.get(m[1]!)?.certPem) {
        return send(res, 200, orders.get(m[1]!)!.certPem!, {
          'content-type': 'application/pem-certificate-chain',
        });
      }
      return problem(res, 404, 'malformed', `no resource ${path}`);
    })().catch((err: unknown) => {
      if (!res.headersSent) problem(res, 500, 'serverInternal', String(err));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  self.directoryUrl = `${base}/dir`;
  self.stop = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  };
  return self;
}
