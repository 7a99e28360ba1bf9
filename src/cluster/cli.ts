import { promises as fs } from 'node:fs';
import { Command } from 'commander';
import { configPath } from '../config/path.js';
import { CertkeeperError } from '../errors.js';

/**
 * `certkeeper export <dir>`: the cluster's certificates from PostgreSQL as a certbot folder (live/, archive/,
 * keys 0600) — the way back to a single host, and a readable backup beside pg_dump.
 */
export function exportCommand(): Command {
  return new Command('export')
    .description(
      'cluster: write every certificate in PostgreSQL to DIR as a certbot folder (live/, archive/)',
    )
    .argument('<dir>', 'an empty or new folder')
    .action(async (dir: string, _o: unknown, cmd: Command) => {
      const { config: file } = cmd.optsWithGlobals() as { config?: string };
      const { loadConfig } = await import('../config/load.js');
      const config = loadConfig(configPath(file));
      if (!config.cluster) {
        throw new CertkeeperError(
          'config',
          'export reads the cluster database, and this configuration has no cluster:',
          {
            field: 'cluster',
            hint: 'on a single host the storage folder already is the certbot folder; copy it instead',
          },
        );
      }
      const existing = await fs.readdir(dir).catch(() => []);
      if (existing.length > 0) {
        throw new CertkeeperError('config', `${dir} is not empty`, {
          hint: 'export into a new or empty folder; nothing was written',
        });
      }
      await fs.mkdir(dir, { recursive: true, mode: 0o755 });
      const { openCluster } = await import('./open.js');
      const handle = await openCluster(config.cluster, config.storage.path, { env: process.env });
      try {
        const names = await handle.store.exportTo(dir);
        process.stdout.write(
          `exported ${names.length} certificate(s) to ${dir}: ${names.join(', ') || '(none)'}\n`,
        );
      } finally {
        await handle.close();
      }
    });
}
