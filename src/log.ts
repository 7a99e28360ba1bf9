import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * Paths redacted from every log line. Stages log plain objects; none of these may ever reach output.
 * Keep in step with the README's "Logs" section.
 */
export const REDACT_PATHS = [
  'keyPem',
  'privateKey',
  'accountKey',
  'token',
  'hmacKey',
  'eab.hmacKey',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'secretAccessKey',
  'sessionToken',
  'credentials',
  '*.keyPem',
  '*.privateKey',
  '*.token',
  '*.hmacKey',
  '*.secretAccessKey',
  '*.sessionToken',
];

/** A logger that drops everything: the default for library use and unit tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
