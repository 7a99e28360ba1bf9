/** The state types moved to core/state.ts; kept here so existing imports work. */
export type { AlertMemory, AriWindow, AttemptRecord, CertState } from '../core/state.js';
