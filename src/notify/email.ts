import { readFile } from 'node:fs/promises';
import type { EmailNotifyConfig } from './schema.js';
import type { Alert, Notifier } from './types.js';

/** One line, no control characters, at most `max` characters: safe for a Subject header. */
function oneLine(s: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function emailSubject(alert: Alert, prefix = '[certkeeper]'): string {
  return oneLine(`${prefix} ${alert.event.toUpperCase()} ${alert.certificate}: ${alert.message}`, 200);
}

/** The plain-text body: what happened, the fix, then the facts, one per line. */
export function emailText(alert: Alert): string {
  const rows: [string, string | undefined][] = [
    ['Certificate', alert.certificate],
    ['Domains', alert.domains.join(', ') || '-'],
    ['What', alert.message],
    ['Fix', alert.hint],
    [
      'Expires',
      alert.notAfter &&
        `${alert.notAfter}${alert.daysLeft !== undefined ? ` (${alert.daysLeft} days left)` : ''}`,
    ],
    ['Serial', alert.serial],
    ['Code', alert.code],
    ['Job', alert.jobId],
    ['ACM', alert.audit && `${alert.audit.arn} (${alert.audit.region}), rule ${alert.audit.rule}`],
    ['Used by', alert.audit?.inUseBy.length ? alert.audit.inUseBy.join(', ') : undefined],
    [
      'Endpoint',
      alert.endpoint &&
        `${alert.endpoint.address}${alert.endpoint.sni ? ` (SNI ${alert.endpoint.sni})` : ''}: ${alert.endpoint.problem}`,
    ],
    ['When', alert.at],
  ];
  const lines = rows.filter(([, v]) => v).map(([k, v]) => `${`${k}:`.padEnd(13)}${v}`);
  return `certkeeper alert: ${alert.event}\n\n${lines.join('\n')}\n`;
}

async function password(smtp: EmailNotifyConfig['smtp']): Promise<string | undefined> {
  if (smtp.password) return smtp.password;
  if (!smtp.passwordFile) return undefined;
  try {
    return (await readFile(smtp.passwordFile, 'utf8')).split('\n')[0]!.trim();
  } catch (err) {
    throw new Error(
      `smtp.passwordFile: cannot read ${smtp.passwordFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
}

/**
 * E-mail through an SMTP server (nodemailer): SMTPS with `secure: true`, else STARTTLS required unless turned off.
 * The server's certificate is verified (against smtp.caBundle when set). One connection per alert: alerts are rare,
 * and nothing stays open between them. Errors name the server and the SMTP answer, never the credentials.
 */
export function create(config: EmailNotifyConfig, timeoutMs?: number): Notifier {
  const { smtp } = config;
  const port = smtp.port ?? (smtp.secure ? 465 : 587);
  const where = `${smtp.host}:${port}`;
  const timeout = timeoutMs ?? smtp.timeoutSeconds * 1000;
  return {
    name: `email ${where}`,
    events: config.events,
    send: async (alert, signal) => {
      const [pass, ca] = await Promise.all([
        password(smtp),
        smtp.caBundle
          ? readFile(smtp.caBundle, 'utf8').catch((err: NodeJS.ErrnoException) => {
              throw new Error(`smtp.caBundle: cannot read ${smtp.caBundle} (${err.code ?? String(err)})`);
            })
          : undefined,
      ]);
      // loaded on the first e-mail: every other start (renew, status, a daemon without e-mail) skips nodemailer
      const { createTransport } = await import('nodemailer');
      const transport = createTransport({
        host: smtp.host,
        port,
        secure: smtp.secure,
        requireTLS: !smtp.secure && smtp.starttls,
        ignoreTLS: !smtp.secure && !smtp.starttls,
        auth: smtp.user ? { user: smtp.user, pass } : undefined,
        tls: { ca, minVersion: 'TLSv1.2', rejectUnauthorized: true },
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
        logger: false,
        debug: false,
      });
      // A stop must not wait for a slow server: give up at once (closing what can be closed).
      let onAbort = () => {};
      const aborted = new Promise<never>((_resolve, reject) => {
        onAbort = () => {
          transport.close();
          reject(new Error('not sent: shutting down'));
        };
      });
      aborted.catch(() => {});
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        if (signal.aborted) throw new Error('not sent: shutting down');
        const sent = transport.sendMail({
          from: config.from,
          to: config.to,
          subject: emailSubject(alert, config.subjectPrefix),
          text: emailText(alert),
          headers: {
            'X-Certkeeper-Event': alert.event,
            'X-Certkeeper-Certificate': oneLine(alert.certificate, 200),
          },
        });
        sent.catch(() => {});
        await Promise.race([sent, aborted]);
      } catch (err) {
        const e = err as Error & { responseCode?: number; code?: string };
        // nodemailer's messages carry the server's answer (e.g. "Invalid login: 535 ..."), not what we sent.
        throw new Error(`${where}: ${e.message}${e.code ? ` (${e.code})` : ''}`);
      } finally {
        signal.removeEventListener('abort', onAbort);
        transport.close();
      }
    },
  };
}
