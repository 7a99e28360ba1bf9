import { EventEmitter } from 'node:events';

/** Kept apart from http.ts so listeners (the daemon's metrics) do not load the ACME client to subscribe. */
export interface AcmeRequestEvent {
  endpoint: string;
  method: string;
  status: number;
  durationMs: number;
}

/** Emits 'request' (AcmeRequestEvent) for every HTTP exchange with the CA: the daemon counts them as metrics. */
export const acmeEvents = new EventEmitter();
