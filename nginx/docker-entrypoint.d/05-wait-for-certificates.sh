#!/bin/sh
# Run by the official nginx image's entrypoint before nginx starts (mounted into /docker-entrypoint.d/ by
# docker-compose.yml). nginx refuses to start while a certificate its config names is missing, and on the very first
# `docker compose up` certkeeper may not have written its placeholder yet: wait for it here instead of failing.
#
#   CERTKEEPER_CERTS        certificate names to wait for, space-separated (default: $CERT_NAME)
#   CERTKEEPER_LIVE_DIR     where they are (default: /etc/letsencrypt/live)
#   CERTKEEPER_WAIT_SECONDS how long to wait before giving up, so the container restarts (default: 120)
set -eu
names="${CERTKEEPER_CERTS:-${CERT_NAME:-}}"
live="${CERTKEEPER_LIVE_DIR:-/etc/letsencrypt/live}"
wait="${CERTKEEPER_WAIT_SECONDS:-120}"
[ -n "$names" ] || exit 0

missing() {
  for n in $names; do
    for f in fullchain.pem privkey.pem; do
      [ -s "$live/$n/$f" ] || { echo "$live/$n/$f"; return 0; }
    done
  done
  return 1
}

tenths=0
said=""
while file="$(missing)"; do
  if [ "$tenths" -ge $((wait * 10)) ]; then
    echo "$0: $file still missing after ${wait}s; is certkeeper running? (docker compose logs certkeeper)" >&2
    exit 1
  fi
  if [ -z "$said" ]; then
    echo "$0: waiting for $file (certkeeper writes a placeholder at its first start)"
    said=1
  fi
  sleep 0.2
  tenths=$((tenths + 2))
done
[ -z "$said" ] || echo "$0: $live has the certificates nginx needs; starting nginx"
