import { Command } from 'commander';
import { loadConfigIsolated } from '../config/load-isolated.js';
import { configPath } from '../config/path.js';
import { assertListenAllowed, parseListen, resolveToken } from '../daemon/auth.js';
import { CertkeeperError } from '../errors.js';

/**
 * `certkeeper run`: the long-running service (the container's default command). Logs JSON lines on stdout.
 * SIGTERM/SIGINT: stop scheduling, give the running renewal --grace seconds, abort it, exit 0. A second signal
 * aborts at once. SIGHUP: re-read the configuration file (an invalid one keeps the running configuration).
 */
export function runCommand(): Command {
  return new Command('run')
    .description(
      'run as a service: check at start and on schedule.cron, serve the HTTP API, metrics and alerts',
    )
    .option(
      '--grace <seconds>',
      'on SIGTERM, how long an in-flight renewal may finish before it is aborted',
      '30',
    )
    .option(
      '--no-check-at-start',
      'do not check certificates right after start (only on the schedule or via the API)',
    )
    .option('--listen <host:port>', 'override server.listen')
    .addHelpText(
      'after',
      '\nSignals: SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the configuration (so does POST /v1/reload).\nEnvironment: CERTKEEPER_TOKEN (API token unless server.token/tokenFile), LOG_LEVEL, LOG_FORMAT=json|pretty.\nExample:\n  CERTKEEPER_TOKEN=$(cat /run/secrets/ck) certkeeper run -c /etc/certkeeper.yml',
    )
    .action(async (o: { grace: string; checkAtStart: boolean; listen?: string }, cmd: Command) => {
      const globals = cmd.optsWithGlobals() as { config?: string; debug?: boolean };
      const grace = Number(o.grace);
      if (!Number.isFinite(grace) || grace < 0) {
        throw new CertkeeperError('config', `--grace: "${o.grace}" is not a number of seconds`, {
          hint: 'use e.g. --grace 30',
        });
      }
      const file = configPath(globals.config);
      const config = await loadConfigIsolated(file);
      const logger = await (await import('./logger.js')).makeLogger({
        fd: 1,
        level: globals.debug ? 'debug' : undefined,
      });
      const token = await resolveToken(config.server, process.env);
      // Check the listen address first, so a refused address fails before any order is placed.
      assertListenAllowed(parseListen(o.listen ?? config.server.listen), token);
      const { createDaemon } = await import('../daemon/daemon.js');
      // cluster: PostgreSQL (connected and migrated here; the key may come from the environment). A node that was
      // in the cluster before waits for an unreachable database; SIGTERM/SIGINT meanwhile end it cleanly.
      let cluster: import('../cluster/wiring.js').ClusterWiring | undefined;
      if (config.cluster) {
        const waiting = new AbortController();
        const stopWaiting = () => waiting.abort();
        process.once('SIGTERM', stopWaiting);
        process.once('SIGINT', stopWaiting);
        try {
          cluster = await (await import('../cluster/wiring.js')).wireClusterWaiting(config, {
            env: process.env,
            logger: logger.child({ component: 'cluster' }),
            signal: waiting.signal,
          });
        } finally {
          process.off('SIGTERM', stopWaiting);
          process.off('SIGINT', stopWaiting);
        }
        if (!cluster) {
          process.exitCode = 0;
          return;
        }
      }
      const daemon = createDaemon(config, {
        logger,
        token,
        checkAtStart: o.checkAtStart,
        loadConfig: () => loadConfigIsolated(file),
        cluster,
      });

      let signals = 0;
      let resolveStop!: (s: string) => void;
      const stopRequested = new Promise<string>((r) => (resolveStop = r));
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals === 1) resolveStop(sig);
        else {
          logger.warn({ event: 'daemon.signal_again', signal: sig }, 'second signal: aborting now');
          void daemon.queue.close(0, 5000);
        }
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      // The outcome is logged (and alerted when invalid) by the reloader.
      const onHup = () =>
        void daemon
          .reload('SIGHUP')
          .catch((err: unknown) =>
            logger.error(
              { event: 'config.reload_failed', error: String(err) },
              `SIGHUP: reload failed: ${String(err)}`,
            ),
          );
      process.on('SIGHUP', onHup);

      await daemon.start().catch(async (err) => {
        await daemon.stop({ graceMs: 0 });
        throw err;
      });
      try {
        await daemon.listen(o.listen);
      } catch (err) {
        await daemon.stop({ graceMs: 0 });
        throw err;
      }
      const sig = await stopRequested;
      logger.info({ event: 'daemon.signal', signal: sig }, `${sig}: shutting down`);
      await daemon.stop({ graceMs: grace * 1000 });
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGHUP', onHup);
      process.exitCode = 0;
      // Idle keep-alive sockets to the CA must not hold the process open after a clean stop.
      setTimeout(() => process.exit(0), 2000).unref();
    });
}
