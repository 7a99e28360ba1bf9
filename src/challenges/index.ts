import type { ChallengeConfig } from '../config/schema.js';
import { CertkeeperError } from '../errors.js';
import type { ChallengeSolver, SolverDeps } from './types.js';
import * as webroot from './webroot/index.js';

/**
 * The name → constructor table. Providers load lazily so the AWS SDK is only imported by users of route53.
 */
export async function createSolver(config: ChallengeConfig, deps: SolverDeps): Promise<ChallengeSolver> {
  if (config.type === 'http-01') return webroot.create(config, deps);
  switch (config.provider) {
    case 'route53':
      return (await import('./route53/index.js')).create(config, deps);
    case 'exec':
      return (await import('./exec/index.js')).create(config, deps);
    default:
      throw new CertkeeperError(
        'config',
        `unknown dns-01 provider "${(config as { provider: string }).provider}"`,
        {
          hint: 'use route53 or exec',
        },
      );
  }
}
