export * from './certificate.js';
export * from './health.js';
export * from './keys.js';
export * from './lifetime.js';
export * from './state.js';
