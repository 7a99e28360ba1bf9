/** The pipeline moved to src/pipeline/renew.ts; kept so existing imports work. */
export * from './pipeline/renew.js';
