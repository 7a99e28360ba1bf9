#!/bin/sh
# certkeeper image entrypoint. The daemon (`run`) idles almost all the time, so it starts with V8 settings that
# trade JIT speed for memory: a 1 MiB young generation, no optimizing or baseline compiler, single-threaded GC,
# bytecode of functions not run since the last collection dropped (start-up code).
# With 1,000 certificates the idle daemon is about 52 MB resident on Node 20, 60 MB on Node 22 (npm run bench,
# daemon section).
# Every other command (renew, status, acm audit, ...) runs on plain node at full speed. Node refuses these V8 flags
# in NODE_OPTIONS, hence this script.
set -e
main="${CERTKEEPER_MAIN:-/app/dist/cli/main.js}"
if [ "$1" = "run" ]; then
  exec node --max-semi-space-size=1 --no-opt --no-sparkplug --single-threaded-gc --bytecode-old-age=1 "$main" "$@"
fi
exec node "$main" "$@"
