/**
 * The nginx deployer: test the configuration, reload only if the test passes, then check over TLS that every
 * domain is served the new certificate. When `nginx -t` rejects this certificate's new files, the previous
 * archive version is put back live so that live/ keeps matching what nginx serves.
 */
import Dockerode from 'dockerode';
import { CertkeeperError } from '../../errors.js';
import { formatAddress, parseAddress, verifyServedCertificate } from '../../verify/tls-probe.js';
import type { DeployContext, Deployer, DeployerDeps, DeployResult, IssuedCertificate } from '../types.js';
import type { NginxDeployConfig } from './schema.js';
import { commandTarget, dockerTarget, firstErrorLine, type NginxTarget, signalTarget } from './targets.js';

export type { NginxDeployConfig } from './schema.js';

export interface NginxDeployerDeps extends DeployerDeps {
  /** Docker client; default: dockerode's own defaults (DOCKER_HOST, else /var/run/docker.sock). */
  docker?: Dockerode;
  /** Config path of this deployer for messages, e.g. `certificates[0].deploy[1]`. */
  field?: string;
}

export function deployerName(config: NginxDeployConfig): string {
  if (config.docker)
    return 'container' in config.docker
      ? `nginx:docker:${config.docker.container}`
      : `nginx:docker:${config.docker.label}`;
  if (config.signal) return `nginx:signal:${config.signal.pidFile}`;
  return `nginx:command:${config.command?.[0] ?? ''}`;
}

export function create(config: NginxDeployConfig, deps: NginxDeployerDeps): Deployer {
  const field = deps.field ?? 'deploy';
  const timeoutMs = config.timeoutSeconds * 1000;
  // Validate the address now so a bad one is a config error at start, not at the first renewal.
  const fixedAddress = config.verify.address
    ? parseAddress(config.verify.address, `${field}.verify.address`)
    : undefined;
  let docker = deps.docker;

  const targetFor = (cert: string): NginxTarget => {
    const opts = { cert, field, timeoutMs };
    if (config.docker) {
      docker ??= new Dockerode();
      return dockerTarget(
        docker,
        { selector: config.docker, reload: config.reload, testConfig: config.testConfig },
        opts,
      );
    }
    if (config.signal) {
      return signalTarget(
        { pidFile: config.signal.pidFile, signal: config.signal.signal, testCommand: testCommandOf(config) },
        opts,
      );
    }
    if (config.command)
      return commandTarget({ command: config.command, testCommand: testCommandOf(config) }, opts);
    throw new CertkeeperError('config', 'the nginx deployer needs one of docker, signal or command', {
      cert,
      field,
      hint: 'set docker: {container: NAME}, signal: {pidFile: PATH} or command: [...]',
      permanent: true,
    });
  };

  return {
    name: deployerName(config),
    async deploy(cert: IssuedCertificate, ctx: DeployContext): Promise<DeployResult> {
      const log = ctx.logger.child({ cert: cert.name, deployer: this.name });
      const target = targetFor(cert.name);

      const tested = await target.test();
      if (tested && !tested.ok) {
        const line = firstErrorLine(tested.output);
        if (mentionsCertificateFiles(tested.output, cert.name)) {
          const previous = await ctx.rollback();
          log.warn(
            { nginx: line, restoredSerial: previous?.serial },
            'nginx -t rejected the new certificate files; previous version put back live',
          );
          throw new CertkeeperError(
            'deploy',
            `nginx -t rejected the new files of this certificate, so nginx was not reloaded: ${line}` +
              (previous
                ? `; the previous version (serial ${previous.serial}) is live again`
                : '; there is no previous version to put back'),
            {
              cert: cert.name,
              field,
              code: 'CK_ERR_NGINX_TEST',
              hint: 'the new certificate or key does not load in nginx (see the nginx line above); check the key type your nginx supports and run certkeeper renew --force once it is fixed',
            },
          );
        }
        log.warn({ nginx: line }, 'nginx -t fails for a reason unrelated to the new files; not reloading');
        throw new CertkeeperError(
          'deploy',
          `nginx -t fails, so nginx was not reloaded and still serves the previous certificate: ${line}`,
          {
            cert: cert.name,
            field,
            code: 'CK_ERR_NGINX_TEST',
            hint: `fix the nginx configuration named in that line, then reload nginx (docker kill -s HUP <container>, or nginx -s reload): the new certificate is already in live/${cert.name}/ and is served from that reload on`,
          },
        );
      }

      await target.reload();
      log.info({ target: target.description, serial: cert.serial }, 'nginx reloaded');

      if (!config.verify.enabled) {
        return { deployer: this.name, ok: true, detail: `reloaded ${target.description} (verify disabled)` };
      }
      const address = fixedAddress ?? { host: await target.defaultVerifyHost(), port: 443 };
      const verified = await verifyServedCertificate({
        cert,
        target: address,
        timeoutMs: config.verify.timeoutSeconds * 1000,
        settleMs: config.verify.settleSeconds * 1000,
        logger: log,
        signal: ctx.signal,
      });
      const names = Object.keys(verified.served).length;
      return {
        deployer: this.name,
        ok: true,
        detail: `reloaded ${target.description}; ${formatAddress(address)} serves serial ${cert.serial} for ${names} name${names === 1 ? '' : 's'}`,
        observedSerial: cert.serial,
      };
    },
  };
}

function testCommandOf(config: NginxDeployConfig): string[] | undefined {
  return config.testConfig ? config.testCommand : undefined;
}

/** Does nginx's complaint name one of this certificate's files (live/<name>/… or archive/<name>/…)? */
export function mentionsCertificateFiles(output: string, name: string): boolean {
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`/(live|archive)/${esc}/`).test(output);
}
