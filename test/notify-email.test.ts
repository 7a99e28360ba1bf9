/**
 * E-mail alerts through a real SMTP server started here (smtp-server, on 127.0.0.1), with STARTTLS on a
 * self-signed certificate the notifier is told to trust, and password authentication. The alerts come from the
 * daemon's dispatcher, so the e-mail target gets the same events and repeat rules as the webhook.
 */
import { promises as fs } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { createSelfSigned } from '../src/crypto/selfsigned.js';
import { ConfigError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { type Alert, AlertDispatcher } from '../src/notify/index.js';
import { pollUntil } from './harness/index.js';

const USER = 'certkeeper@certkeeper.test';
const PASSWORD = 'smtp-secret-5c2f8e1d';
interface Received {
  from: string;
  to: string[];
  secure: boolean;
  user?: string;
  raw: string;
}
let received: Received[] = [];
let work: string;
let caBundle: string;
const servers: SMTPServer[] = [];

async function startSmtp(opts: { starttls?: boolean } = {}): Promise<number> {
  const { certPem, keyPem } = await createSelfSigned({
    commonName: '127.0.0.1',
    altNames: ['127.0.0.1'],
    days: 1,
  });
  await fs.writeFile(caBundle, certPem);
  const server = new SMTPServer({
    key: keyPem,
    cert: certPem,
    disabledCommands: opts.starttls === false ? ['STARTTLS'] : [],
    allowInsecureAuth: false, // AUTH only after STARTTLS
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === USER && auth.password === PASSWORD) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Authentication failed'), { responseCode: 535 }));
    },
    onData(stream, session: SMTPServerSession, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          secure: session.secure,
          user: session.user as string | undefined,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.server.address() as AddressInfo).port;
}

function emailConfig(port: number, smtp: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return parseConfig(
    {
      acme: { directoryUrl: 'https://127.0.0.1:1/dir' },
      notify: [
        {
          type: 'email',
          smtp: { host: '127.0.0.1', port, user: USER, password: PASSWORD, caBundle, ...smtp },
          from: 'certkeeper <certkeeper@certkeeper.test>',
          to: ['ops@certkeeper.test', 'oncall@certkeeper.test'],
          ...extra,
        },
      ],
    },
    { env: {} },
  ).notify;
}

const failure: Alert = {
  event: 'failure',
  certificate: 'shop',
  domains: ['shop.certkeeper.test', 'www.shop.certkeeper.test'],
  message: 'renewal failed: self-check failed before asking the CA',
  hint: 'make nginx serve /var/www/certbot at http://shop.certkeeper.test/.well-known/acme-challenge/',
  code: 'CK_ERR_SELF_CHECK',
  jobId: 'job-42',
  notAfter: '2026-12-20T10:00:00.000Z',
  daysLeft: 9,
  at: '2026-12-11T10:00:00.000Z',
};

/** A pino logger writing into `lines`, at debug level (so anything the notifier logs is seen). */
function capturingLogger(lines: string[]) {
  return pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
}

beforeAll(async () => {
  work = await fs.mkdtemp(join(tmpdir(), 'ck-email-'));
  caBundle = join(work, 'smtp-ca.pem');
});
afterEach(() => {
  received = [];
});
afterAll(async () => {
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  await fs.rm(work, { recursive: true, force: true });
});

describe('e-mail alerts', () => {
  it('a failure alert arrives over STARTTLS, authenticated, with the fix in the body', async () => {
    const port = await startSmtp();
    const lines: string[] = [];
    const alerts = new AlertDispatcher(emailConfig(port), {
      logger: capturingLogger(lines),
      retryDelaysMs: [],
    });
    alerts.notify(failure);
    await alerts.flush();
    expect(alerts.failed, lines.join('')).toBe(0);
    expect(received).toHaveLength(1);
    const m = received[0]!;
    expect(m).toMatchObject({
      from: 'certkeeper@certkeeper.test',
      to: ['ops@certkeeper.test', 'oncall@certkeeper.test'],
      secure: true, // upgraded with STARTTLS before MAIL FROM
      user: USER,
    });
    const cut = m.raw.indexOf('\r\n\r\n');
    const [folded, body] = [m.raw.slice(0, cut), m.raw.slice(cut + 4)];
    const head = folded.replace(/\r\n[ \t]+/g, ' ');
    expect(head).toMatch(
      /^Subject: \[certkeeper\] FAILURE shop: renewal failed: self-check failed before asking the CA$/m,
    );
    expect(head).toMatch(/^X-Certkeeper-Event: failure$/m);
    expect(head).toMatch(/^To: ops@certkeeper\.test, oncall@certkeeper\.test$/m);
    // quoted-printable: soft line breaks and =XX escapes
    const text = body
      .replace(/=\r\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
      .replace(/\r\n/g, '\n');
    expect(text).toContain(
      'Fix:         make nginx serve /var/www/certbot at http://shop.certkeeper.test/.well-known/acme-challenge/',
    );
    expect(text).toContain('Domains:     shop.certkeeper.test, www.shop.certkeeper.test');
    expect(text).toContain('Expires:     2026-12-20T10:00:00.000Z (9 days left)');
    expect(text).toContain('Code:        CK_ERR_SELF_CHECK');
    // Credentials never reach the log.
    const log = lines.join('');
    expect(log).toContain('alert sent to email 127.0.0.1:');
    expect(log).not.toContain(PASSWORD);
  });

  it('the password can come from a file; only subscribed events are mailed', async () => {
    const port = await startSmtp();
    const file = join(work, 'smtp-password');
    await fs.writeFile(file, `${PASSWORD}\n`, { mode: 0o600 });
    const alerts = new AlertDispatcher(
      emailConfig(port, { password: undefined, passwordFile: file }, { events: ['success'] }),
      { logger: silentLogger, retryDelaysMs: [] },
    );
    alerts.notify(failure); // not subscribed
    alerts.notify({ ...failure, event: 'success', message: 'renewed: serial 01AB, valid until 2027-03-01' });
    await alerts.flush();
    expect(received).toHaveLength(1);
    expect(received[0]!.raw).toMatch(/^Subject: \[certkeeper\] SUCCESS shop: renewed: serial 01AB/m);
  });

  it('"expiring" follows the same repeat rule as the webhook: once, then daily while it fails', async () => {
    const port = await startSmtp();
    let now = Date.parse('2026-12-11T10:00:00Z');
    const alerts = new AlertDispatcher(emailConfig(port), {
      logger: silentLogger,
      retryDelaysMs: [],
      now: () => new Date(now),
    });
    const expiring = { alert: { ...failure, event: 'expiring' as const }, failing: true };
    alerts.expiring([expiring]);
    now += 3600_000;
    alerts.expiring([expiring]); // an hour later: not again
    await alerts.flush();
    expect(received).toHaveLength(1);
    now += 86_400_000;
    alerts.expiring([expiring]); // a day later: again
    await alerts.flush();
    expect(received).toHaveLength(2);
  });

  it('refuses to send without STARTTLS, and refuses an untrusted certificate', async () => {
    const noTls = await startSmtp({ starttls: false });
    const lines: string[] = [];
    const a = new AlertDispatcher(emailConfig(noTls), { logger: capturingLogger(lines), retryDelaysMs: [] });
    a.notify(failure);
    await a.flush();
    expect(a.failed).toBe(1);
    expect(received).toHaveLength(0);
    expect(lines.join('')).toMatch(/"event":"notify\.failed".*127\.0\.0\.1:\d+: .*STARTTLS/);

    const port = await startSmtp(); // writes a new certificate into caBundle...
    await fs.writeFile(
      caBundle,
      (await createSelfSigned({ commonName: 'other', altNames: ['127.0.0.1'], days: 1 })).certPem,
    );
    const lines2: string[] = [];
    const b = new AlertDispatcher(emailConfig(port), { logger: capturingLogger(lines2), retryDelaysMs: [] });
    b.notify(failure);
    await b.flush();
    expect(b.failed).toBe(1);
    expect(received).toHaveLength(0);
    expect(lines2.join('')).toMatch(/certificate|self.signed/i);
    expect(lines2.join('')).not.toContain(PASSWORD);
  });

  it('a wrong password is a failed delivery that names the server, not the password', async () => {
    const port = await startSmtp();
    const lines: string[] = [];
    const a = new AlertDispatcher(emailConfig(port, { password: 'wrong-password-123' }), {
      logger: capturingLogger(lines),
      retryDelaysMs: [],
    });
    a.notify(failure);
    await a.flush();
    expect(a.failed).toBe(1);
    const log = lines.join('');
    expect(log).toMatch(/127\.0\.0\.1:\d+: Invalid login: 535/);
    expect(log).not.toContain('wrong-password-123');
  });

  it('a stop does not wait for a server that never answers', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((sock) => sockets.push(sock)); // accepts, never greets
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as AddressInfo).port;
      // With a 10-minute SMTP timeout only the abort can end this delivery within the test's time.
      const alerts = new AlertDispatcher(emailConfig(port, { timeoutSeconds: 600 }), {
        logger: silentLogger,
        retryDelaysMs: [],
      });
      alerts.notify(failure);
      await pollUntil(async () => sockets.length > 0, { attempts: 100, intervalMs: 20 });
      await alerts.close(0);
      expect(alerts.failed).toBe(1);
      expect(alerts.delivered).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('checks the configuration: addresses, password without user, a password over plain SMTP', () => {
    const bad = (smtp: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
      try {
        emailConfig(587, smtp, extra);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).issues;
      }
      throw new Error('expected a ConfigError');
    };
    expect(bad({}, { to: ['not-an-address'] })).toEqual([
      'notify[0].to[0]: "not-an-address" is not an e-mail address (ops@example.com or "Name <ops@example.com>")',
    ]);
    expect(bad({ user: undefined })).toEqual([
      'notify[0].smtp.user: a password needs the user name it belongs to',
    ]);
    expect(bad({ host: 'smtp.example.com', starttls: false })[0]).toMatch(
      /^notify\[0\]\.smtp\.starttls: refusing to send the SMTP password to smtp\.example\.com without TLS/,
    );
    expect(bad({ passwordFile: '/x' })).toEqual(['notify[0].smtp: set password or passwordFile, not both']);
  });
});
