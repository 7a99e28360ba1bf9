/**
 * `npm run demo`: the main job end to end on an embedded default — a local Pebble CA, and an nginx that needs a
 * certificate to start. certkeeper writes the first-boot placeholder, nginx starts with it, `certkeeper renew`
 * issues a real certificate over HTTP-01, reloads nginx through its pid file and checks the serial nginx serves.
 * Everything listens on 127.0.0.1 and is stopped at the end; the files stay in the printed folder.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/load.js';
import { ensureBootstrap } from '../src/deploy/bootstrap.js';
import { silentLogger } from '../src/log.js';
import { CertStore } from '../src/store/store.js';
import {
  fetchServedCertificate,
  freePort,
  type NginxHandle,
  type PebbleHandle,
  startNginx,
  startPebble,
} from '../test/harness/index.js';

const DOMAIN = 'demo.certkeeper.test';
// Bold headings on a terminal only: no escape codes in redirected output or with NO_COLOR set (no-color.org).
const bold = process.stdout.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
const say = (s: string) => process.stdout.write(bold ? `\x1b[1m==> ${s}\x1b[0m\n` : `==> ${s}\n`);

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'certkeeper-demo-'));
  await fs.chmod(dir, 0o755);
  const storage = join(dir, 'letsencrypt');
  const webroot = join(dir, 'www');
  await fs.mkdir(webroot, { recursive: true });
  let nginx: NginxHandle | undefined;
  let pebble: PebbleHandle | undefined;
  try {
    const httpsPort = await freePort();
    const httpPort = await freePort();
    // 1. first boot: nginx.conf names live/<name>/fullchain.pem, which does not exist yet.
    say(`first boot: writing a placeholder so nginx can start (storage ${storage})`);
    const draft = parseConfigText(
      `acme: { directoryUrl: https://127.0.0.1:1/dir }\nstorage: { path: ${storage} }\ncertificates:\n  - { name: demo, domains: [${DOMAIN}], challenge: { type: http-01, webroot: ${webroot} }, deploy: [{ type: nginx, command: ["true"] }] }\n`,
    );
    await ensureBootstrap(draft.certificates[0]!, new CertStore(storage), silentLogger);
    const live = join(storage, 'live', 'demo');
    nginx = await startNginx({
      webroot,
      httpPort,
      httpsPort,
      tlsServers: [
        { serverName: DOMAIN, certPath: join(live, 'fullchain.pem'), keyPath: join(live, 'privkey.pem') },
      ],
    });
    const before = await fetchServedCertificate({ host: '127.0.0.1', port: httpsPort, servername: DOMAIN });
    say(
      `nginx is up on 127.0.0.1:${httpPort} (HTTP) and :${httpsPort} (TLS), serving placeholder serial ${before.serial}`,
    );

    // 2. the CA: Pebble + its DNS, resolving every name to 127.0.0.1
    pebble = await startPebble({ httpPort });
    say(`Pebble ACME CA at ${pebble.directoryUrl}`);

    // 3. the configuration a user writes (here pointed at the local CA and ports)
    const configFile = join(dir, 'certkeeper.yml');
    await fs.writeFile(
      configFile,
      `# certkeeper demo configuration
acme:
  directoryUrl: ${pebble.directoryUrl}
  caBundle: ${pebble.caBundlePath}      # trust the test CA's own HTTPS
  email: demo@certkeeper.test
storage:
  path: ${storage}
selfCheck:
  httpPort: ${httpPort}                 # the CA always dials port 80; the demo's nginx is on ${httpPort}
  resolvers: ["${pebble.dnsServer}"]    # resolve names like the test CA does
certificates:
  - name: demo
    domains: [${DOMAIN}]
    challenge: { type: http-01, webroot: ${webroot} }
    deploy:
      - type: nginx
        signal: { pidFile: ${nginx.pidFile} }
        testCommand: [/usr/sbin/nginx, -t, -q, -p, ${nginx.prefix}, -c, ${nginx.confPath}]
        verify: { address: "127.0.0.1:${httpsPort}" }
`,
    );
    say(`configuration: ${configFile}`);
    process.stdout.write(await fs.readFile(configFile, 'utf8'));

    // 4. the real CLI, as a user runs it
    const cli = (args: string[]) =>
      spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          join(import.meta.dirname, '..', 'src', 'cli', 'main.ts'),
          '--config',
          configFile,
          ...args,
        ],
        {
          stdio: 'inherit',
          env: { ...process.env, LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty' },
        },
      );
    say('certkeeper renew');
    const renewRun = cli(['renew']);
    say('certkeeper status');
    cli(['status']);

    const after = await fetchServedCertificate({ host: '127.0.0.1', port: httpsPort, servername: DOMAIN });
    const stored = (await new CertStore(storage).current('demo'))!;
    const ok = renewRun.status === 0 && after.serial === stored.serial && !stored.placeholder;
    say(
      `nginx now serves serial ${after.serial} (stored: ${stored.serial}, valid until ${stored.notAfter.toISOString()})`,
    );
    say(
      ok
        ? 'demo OK: issued by the local CA, stored, nginx reloaded, served certificate verified'
        : 'demo FAILED (see above)',
    );
    process.stdout.write(`files kept in ${dir}\n`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    await pebble?.stop();
    await nginx?.stop();
  }
}

await main();
