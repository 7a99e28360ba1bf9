import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // End-to-end files start their own Pebble/nginx/dockerd on free ports; two cores, so keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
