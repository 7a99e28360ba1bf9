import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import type { CertResult } from '../pipeline/types.js';
import { JobQueue } from './queue.js';

const names = (n: number) => Array.from({ length: n }, (_, i) => `site-${i}`);

function queue(all: string[]) {
  return new JobQueue(
    async (job) => ({
      jobId: job.id,
      ok: true,
      results: job.names.map(
        (name, i): CertResult => ({
          name,
          status: i % 10 === 0 ? 'failed' : 'skipped',
          reason: `${name}: 89 days left`,
          durationMs: 1,
        }),
      ),
      startedAt: job.startedAt!,
      finishedAt: new Date().toISOString(),
    }),
    { allNames: () => all, logger: silentLogger },
  );
}

describe('JobQueue', () => {
  it('keeps per-certificate results of its latest jobs only (5,000 in all), counts for older ones', async () => {
    const all = names(1000);
    const q = queue(all);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      ids.push(q.submit({ source: 'schedule' }).job.id);
      await q.idle();
    }
    const jobs = ids.map((id) => q.get(id)!);
    // the newest five keep their 1,000 results each; the three before keep what they counted
    for (const j of jobs.slice(3)) expect(j.results).toHaveLength(1000);
    for (const j of jobs.slice(0, 3)) {
      expect(j.results).toBeUndefined();
      expect(j.counts).toEqual({ failed: 100, skipped: 900 });
      expect(j.state).toBe('succeeded');
    }
    // a job bigger than that keeps all of its own
    const big = q.submit({ source: 'api', names: names(7000).slice(1000), force: true }).job;
    await q.idle();
    expect(q.get(big.id)?.results).toHaveLength(6000);
    expect(jobs.every((j) => j.results === undefined)).toBe(true);
  });
});
