import { isIP } from 'node:net';
import * as z from 'zod';

const events = z
  .array(z.enum(['failure', 'expiring', 'success', 'audit', 'endpoint']))
  .default(['failure', 'expiring', 'audit', 'endpoint']);

const isLoopbackHost = (h: string) =>
  h === 'localhost' || (isIP(h) === 4 ? h.startsWith('127.') : h === '::1');

/** "ops@example.com" or "certkeeper <ops@example.com>". */
const mailbox = z
  .string()
  .refine((s) => /^[^\s<>@]+@[^\s<>@]+$/.test(s) || /^[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>$/.test(s.trim()), {
    error: (iss) =>
      `"${String(iss.input)}" is not an e-mail address (ops@example.com or "Name <ops@example.com>")`,
  });

export const smtpSchema = z
  .strictObject({
    host: z.string().min(1),
    /** Default 465 with `secure: true`, else 587 (submission with STARTTLS). */
    port: z.number().int().min(1).max(65535).optional(),
    /** TLS from the first byte (SMTPS, usually port 465). */
    secure: z.boolean().default(false),
    /** Without `secure`: insist on STARTTLS before anything is sent (default). false only for a local relay. */
    starttls: z.boolean().default(true),
    user: z.string().min(1).optional(),
    /** Usually `${SMTP_PASSWORD}` from the environment; or passwordFile. Never logged. */
    password: z.string().min(1).optional(),
    /** File whose first line is the password (read at each send, so a rotated secret is picked up). */
    passwordFile: z.string().min(1).optional(),
    /** PEM file of the CA(s) to trust for the server's certificate (a private relay); default: the system's. */
    caBundle: z.string().min(1).optional(),
    timeoutSeconds: z.number().positive().default(30),
  })
  .superRefine((s, ctx) => {
    if (s.password && s.passwordFile)
      ctx.addIssue({ code: 'custom', message: 'set password or passwordFile, not both' });
    if ((s.password || s.passwordFile) && !s.user)
      ctx.addIssue({
        code: 'custom',
        path: ['user'],
        message: 'a password needs the user name it belongs to',
      });
    if (!s.secure && !s.starttls && s.user && !isLoopbackHost(s.host))
      ctx.addIssue({
        code: 'custom',
        path: ['starttls'],
        message: `refusing to send the SMTP password to ${s.host} without TLS: keep starttls: true (or secure: true for port 465)`,
      });
  });

export const emailNotifySchema = z.strictObject({
  type: z.literal('email'),
  smtp: smtpSchema,
  from: mailbox,
  to: z.array(mailbox).min(1, 'list at least one recipient'),
  subjectPrefix: z.string().default('[certkeeper]'),
  events,
});

export const notifySchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('webhook'),
    url: z.url(),
    headers: z.record(z.string(), z.string()).optional(),
    events,
  }),
  z.strictObject({ type: z.literal('slack'), url: z.url(), events }),
  emailNotifySchema,
]);
export type NotifyConfig = z.infer<typeof notifySchema>;
export type EmailNotifyConfig = z.infer<typeof emailNotifySchema>;
