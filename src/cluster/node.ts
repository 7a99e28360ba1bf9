import type { CertificateConfig } from '../config/schema.js';
import { createDeployer } from '../deploy/index.js';
import type { DeployResult, IssuedCertificate } from '../deploy/types.js';
import { asCertkeeperError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import type { ClusterHandle } from './open.js';
import { ClusterSync } from './sync.js';

export interface ClusterNodeOptions {
  certificates: CertificateConfig[];
  syncIntervalMs: number;
  logger?: Logger;
  /** Deployers are looked up through this (tests may pass fakes); default: the real ones. */
  createDeployer?: typeof createDeployer;
}

/**
 * One node of the cluster: keeps the local certbot folder in step with PostgreSQL and runs this node's own
 * deployers (reload its nginx, verify what it serves) whenever a certificate stored by any node goes live here.
 * Ordering is the pipeline's, with the PgStore injected: whichever node wins a certificate's lock orders it and
 * deploys it itself; every other node follows through here.
 */
export class ClusterNode {
  readonly sync: ClusterSync;
  private readonly log: Logger;
  private byName: Map<string, CertificateConfig>;

  constructor(
    readonly cluster: ClusterHandle,
    private readonly opts: ClusterNodeOptions,
  ) {
    this.log = opts.logger ?? silentLogger;
    this.byName = new Map(opts.certificates.map((c) => [c.name, c]));
    const webroots = webrootsOf(opts.certificates);
    this.sync = new ClusterSync({
      store: cluster.store,
      url: cluster.url,
      intervalMs: opts.syncIntervalMs,
      logger: this.log,
      webroots,
      onChange: async (name, live) => {
        await this.deployLocal(name, live);
      },
    });
  }

  start(): Promise<void> {
    return this.sync.start();
  }

  /** A reloaded configuration: its certificates' deployers and webroots apply to what goes live from now on. */
  setCertificates(certificates: CertificateConfig[]): void {
    this.byName = new Map(certificates.map((c) => [c.name, c]));
    this.sync.setWebroots(webrootsOf(certificates));
  }
  stop(): Promise<void> {
    return this.sync.stop();
  }

  /** This node's deployers for a certificate that just went live here; the outcome goes to node_deploys. */
  async deployLocal(name: string, live: IssuedCertificate): Promise<DeployResult[]> {
    const cert = this.byName.get(name);
    // nginx on every node; ACM (one account-wide import) stays with the node that ordered, in the pipeline.
    const local = cert?.deploy.filter((d) => d.type === 'nginx') ?? [];
    if (local.length === 0) return [];
    const make = this.opts.createDeployer ?? createDeployer;
    const results: DeployResult[] = [];
    for (const d of local) {
      const log = this.log.child({ cert: name, deployer: d.type });
      try {
        const deployer = await make(d, { logger: log });
        results.push(
          await deployer.deploy(live, {
            logger: log,
            // Per-deployer state stays with this node's local mirror (an ACM import belongs to the ordering node).
            getState: () => undefined,
            setState: async () => {},
            rollback: () => this.cluster.store.rollback(name),
          }),
        );
      } catch (err) {
        const e = asCertkeeperError(err, 'deploy', { cert: name });
        results.push({
          deployer: d.type,
          ok: false,
          detail: e.hint ? `${e.message} (fix: ${e.hint})` : e.message,
        });
      }
    }
    const ok = results.every((r) => r.ok);
    this.log[ok ? 'info' : 'error'](
      { event: ok ? 'cluster.deployed' : 'cluster.deploy_failed', cert: name, serial: live.serial },
      `${name}: ${ok ? 'deployed' : 'not deployed'} on this node (${results.map((r) => `${r.deployer}: ${r.detail}`).join('; ')})`,
    );
    await this.cluster.store
      .recordDeploy(name, {
        version: live.version,
        serial: live.serial,
        ok,
        detail: results.map((r) => `${r.deployer}: ${r.detail}`).join('; '),
      })
      .catch(() => {});
    return results;
  }
}

function webrootsOf(certificates: CertificateConfig[]): string[] {
  return [
    ...new Set(certificates.flatMap((c) => (c.challenge.type === 'http-01' ? [c.challenge.webroot] : []))),
  ];
}
