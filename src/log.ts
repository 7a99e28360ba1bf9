import type { Logger } from 'pino';

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

/**
 * A logger that drops everything: the default for library use and unit tests. A plain object with pino's methods
 * (fastify's logger check included), not pino({ level: 'silent' }): pino stays unloaded in commands that never log,
 * such as `status` and `check-config` (94 KB of bundled code and its start-up work).
 */
export const silentLogger: Logger = (() => {
  const noop = () => {};
  const logger = {
    level: 'silent',
    levels: { values: {}, labels: {} },
    fatal: noop,
    error: noop,
    warn: noop,
    info: noop,
    debug: noop,
    trace: noop,
    silent: noop,
    child: () => logger,
    bindings: () => ({}),
    setBindings: noop,
    isLevelEnabled: () => false,
    flush: (cb?: (err?: Error) => void) => cb?.(),
    on: () => logger,
  };
  return logger as unknown as Logger;
})();

/**
 * Masks secrets in free text we did not write (a hook's stderr, a server's error body) before it is logged:
 * `token=…`/`password: …`-style values, bearer tokens, AWS access key ids and long opaque strings.
 */
export function redactText(text: string): string {
  return text
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]')
    .replace(
      /\b([\w-]*(?:token|secret|passw(?:or)?d|api[_-]?key|access[_-]?key|credential|auth(?:orization)?)[\w-]*)(["']?\s*[=:]\s*["']?|\s+)([^\s"',;&]+)/gi,
      '$1$2[redacted]',
    )
    .replace(/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, '[redacted]')
    .replace(/[A-Za-z0-9+_=-]{40,}/g, '[redacted]'); // long opaque strings; paths (with "/") stay readable
}
