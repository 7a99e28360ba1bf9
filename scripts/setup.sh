#!/usr/bin/env bash
# Idempotent set-up for the demo, the tests and the benchmark on a fresh Debian machine:
# Debian packages the end-to-end tests drive (Pebble, nginx, Docker, PostgreSQL, Chromium, Prometheus),
# then the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

# binary → Debian package
declare -A want=(
  [/usr/bin/pebble]=pebble
  [/usr/bin/pebble-challtestsrv]=pebble
  [/usr/sbin/nginx]=nginx-light
  [/usr/sbin/dockerd]=docker.io
  [/usr/bin/docker-compose]=docker-compose
  [/usr/bin/chromium]=chromium
  [/usr/bin/promtool]=prometheus
)
missing=()
for bin in "${!want[@]}"; do
  [ -x "$bin" ] || missing+=("${want[$bin]}")
done
# PostgreSQL's server binaries live in a versioned folder (the cluster tests run initdb/pg_ctl from it).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies: install when absent or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
