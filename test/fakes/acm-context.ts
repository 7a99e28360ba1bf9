/** Helpers shared by the ACM tests: a real ACMClient aimed at the fake, and an in-memory DeployContext. */
import { ACMClient } from '@aws-sdk/client-acm';
import type { DeployContext } from '../../src/deploy/types.js';
import { silentLogger } from '../../src/log.js';
import type { FakeAcm } from './acm-server.js';

/** Static, fake credentials: the default chain would otherwise look further (and must never reach IMDS). */
export const TEST_CREDENTIALS = {
  accessKeyId: 'AKIDCERTKEEPERTEST',
  secretAccessKey: 'certkeeper-test-secret',
};

export function acmClientFor(fake: FakeAcm, region = 'us-east-1', maxAttempts = 3): ACMClient {
  return new ACMClient({ region, endpoint: fake.url, credentials: TEST_CREDENTIALS, maxAttempts });
}

export function memoryContext(
  initial: Record<string, unknown> = {},
): DeployContext & { state: Record<string, unknown> } {
  const state: Record<string, unknown> = structuredClone(initial);
  return {
    state,
    logger: silentLogger,
    getState: <T>(key: string) => state[key] as T | undefined,
    setState: async (key: string, value: unknown) => {
      state[key] = structuredClone(value);
    },
    rollback: async () => undefined,
  };
}
