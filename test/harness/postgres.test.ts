import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresHandle, startPostgres } from './postgres.js';

describe('harness: PostgreSQL 15 on loopback', () => {
  let pgh: PostgresHandle;
  beforeAll(async () => {
    pgh = await startPostgres();
  });
  afterAll(async () => {
    await pgh?.stop();
  });

  it('accepts connections on 127.0.0.1 and survives a restart on the same port', async () => {
    const c = new pg.Client({ connectionString: pgh.url });
    await c.connect();
    expect((await c.query('select 1 + 1 as n')).rows[0].n).toBe(2);
    const before = await pgh.pid();
    c.on('error', () => {});
    await pgh.restart();
    await expect(c.query('select 1')).rejects.toThrow();
    const c2 = new pg.Client({ connectionString: pgh.url });
    await c2.connect();
    expect((await c2.query('select 2 as n')).rows[0].n).toBe(2);
    await c2.end();
    expect(await pgh.pid()).not.toBe(before);
  });
});
