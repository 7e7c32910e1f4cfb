import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { adminQuery, describePostgres, requirePostgresUrl, useTestSchema } from '../../helpers/postgres.js';

/**
 * What the fleet test (postgres-fleet-faults.test.ts) found: an
 * `acquireAgentLock` whose statement committed but whose reply was lost
 * rejected with `ConnectionError` and left its lease row behind, so every
 * process was shut out of that agent for a whole lease. A rejected acquire
 * must hold nothing. The lost reply is made here by a real pool that runs
 * the lease statement on the server and then fails the call as a dropped
 * connection would.
 */

describePostgres('PostgresStore: an agent lock whose reply was lost', () => {
  const place = useTestSchema('lost_replies');
  const pools: pg.Pool[] = [];
  const stores: PostgresStore[] = [];
  afterAll(async () => {
    await Promise.allSettled(stores.map((store) => store.close()));
    await Promise.allSettled(pools.map((pool) => pool.end()));
  });

  it('holds nothing after an acquire rejected with ConnectionError: another store takes the lock at once', async () => {
    const pool = new pg.Pool({ connectionString: requirePostgresUrl(), max: 2 });
    pools.push(pool);
    let lostReplies = 0;
    const query = pool.query.bind(pool) as (config: { text?: string }) => Promise<unknown>;
    (pool as unknown as { query: unknown }).query = async (config: { text?: string }) => {
      const result = await query(config);
      // The lease statement and its retry both commit, and neither reply arrives.
      if (
        config.text?.includes('INSERT INTO') &&
        config.text.includes('kode_agent_locks') &&
        lostReplies < 2
      ) {
        lostReplies++;
        throw new Error('Connection terminated unexpectedly');
      }
      return result;
    };
    const unlucky = new PostgresStore({ pool: pool as never, schema: place.schema, lockLeaseMs: 60_000 });
    const other = new PostgresStore({ connection: place.url, schema: place.schema, lockLeaseMs: 60_000 });
    stores.push(unlucky, other);
    await other.open();

    const id = `lost-reply-${process.pid}`;
    await expect(unlucky.acquireAgentLock(id, 1_000)).rejects.toMatchObject({ code: 'KODE_CONNECTION' });
    expect(lostReplies).toBe(2);
    const rows = await adminQuery(`SELECT 1 FROM "${place.schema}".kode_agent_locks WHERE agent_id = $1`, [
      id,
    ]);
    expect(rows).toEqual([]);
    const release = await other.acquireAgentLock(id, 100);
    await release();
  });
});
