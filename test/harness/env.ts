import { accessSync, constants } from 'node:fs';

/** Which Debian package provides each binary the end-to-end tests use. */
const APT_PACKAGE: Record<string, string> = {
  pebble: 'pebble',
  'pebble-challtestsrv': 'pebble',
  nginx: 'nginx',
  certbot: 'certbot',
  lego: 'lego',
  docker: 'docker.io',
  dockerd: 'docker.io',
  openssl: 'openssl',
};

export function aptPackageFor(path: string): string {
  const base = path.split('/').pop() ?? path;
  return APT_PACKAGE[base] ?? base;
}

export function hasBinary(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Throws one clear Error listing every missing binary and the apt package that installs it. */
export function requireBinaries(...paths: string[]): void {
  const missing = paths.filter((p) => !hasBinary(p));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(aptPackageFor))];
  throw new Error(
    `missing executable${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: install with ` +
      `\`sudo apt-get install -y ${pkgs.join(' ')}\` (Debian/Ubuntu) — the end-to-end tests run the real programs`,
  );
}
