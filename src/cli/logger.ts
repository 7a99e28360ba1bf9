import { pino } from 'pino';
import { type Logger, REDACT_PATHS } from '../log.js';

/**
 * pino JSON lines; pretty when the destination is a TTY or LOG_FORMAT=pretty (LOG_FORMAT=json forces JSON).
 * Colours only on a terminal and without NO_COLOR. LOG_LEVEL sets the level (default info). The CLI logs to stderr so stdout stays for results; the daemon to stdout.
 */
export async function makeLogger(opts: {
  fd: 1 | 2;
  env?: NodeJS.ProcessEnv;
  level?: string;
}): Promise<Logger> {
  const env = opts.env ?? process.env;
  const level = opts.level ?? env.LOG_LEVEL ?? 'info';
  const stream = opts.fd === 1 ? process.stdout : process.stderr;
  const pretty = env.LOG_FORMAT === 'pretty' || (env.LOG_FORMAT !== 'json' && stream.isTTY === true);
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } };
  if (pretty) {
    const { default: prettyStream } = await import('pino-pretty');
    return pino(
      base,
      prettyStream({
        destination: opts.fd,
        sync: true,
        colorize: stream.isTTY === true && !env.NO_COLOR,
        ignore: 'pid,hostname,event',
        translateTime: 'SYS:HH:MM:ss',
      }),
    );
  }
  return pino(base, pino.destination({ dest: opts.fd, sync: true }));
}
