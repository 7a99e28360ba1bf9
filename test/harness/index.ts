export { aptPackageFor, hasBinary, requireBinaries } from './env.js';
export { type SimpleResponse, simpleRequest } from './http.js';
export { NGINX_BIN, type NginxHandle, type NginxOptions, type NginxTlsServer, startNginx } from './nginx.js';
export {
  CHALLTESTSRV_BIN,
  PEBBLE_BIN,
  type PebbleHandle,
  type PebbleOptions,
  spawnChalltestsrv,
  startPebble,
} from './pebble.js';
export { freePort, freePorts, isListening, pollUntil } from './ports.js';
export { PG_BIN_DIR, type PostgresHandle, startPostgres } from './postgres.js';
export { type ManagedProcess, spawnManaged, tailFile } from './proc.js';
export { fetchServedCertificate, verifyChain } from './tls.js';
