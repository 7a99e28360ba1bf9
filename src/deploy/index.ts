import type { DeployConfig } from '../config/schema.js';
import type { Deployer, DeployerDeps } from './types.js';

/** The name → constructor table for deployers, loaded lazily (dockerode and the AWS SDK only when used). */
export async function createDeployer(config: DeployConfig, deps: DeployerDeps): Promise<Deployer> {
  switch (config.type) {
    case 'nginx':
      return (await import('./nginx/index.js')).create(config, deps);
    case 'acm':
      return (await import('./acm/index.js')).create(config, deps);
  }
}
