import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { PostgresKvBackend } from '../../../adapters/postgres/postgres-kv.js';
import { runKvConformance } from '../../../conformance/kv/index.js';
import { createKvStore } from '../../../src/kv/kv-store.js';
import type { KvStore } from '../../../src/kv/kv-types.js';
import { describePostgres, useTestSchema } from '../../helpers/postgres.js';

/**
 * The KV suite on PostgreSQL, in two files vitest runs side by side: this one
 * runs everything but the long races and the isolation fuzzing, which
 * kv-postgres-races.test.ts runs on its own schema.
 */
describePostgres('KV on PostgreSQL', () => {
  const target = useTestSchema('kv');
  const pools = new Map<KvStore, pg.Pool>();

  /**
   * Each store gets its own pool: peers are separate clients, as two processes
   * would be. Commits do not wait for the WAL flush (synchronous_commit=off,
   * for these sessions only): the suite checks atomicity and isolation, which
   * do not depend on it, and 4,000 contended increments would otherwise spend
   * most of a minute waiting for fsync on one row's lock.
   */
  function kvOnNewPool(now: () => number): KvStore {
    const pool = new pg.Pool({
      connectionString: target.url,
      max: 6,
      application_name: 'kode-store-kv-test',
      options: '-c synchronous_commit=off',
    });
    const kv = createKvStore(new PostgresKvBackend(pool, { schema: target.schema }), { now });
    pools.set(kv, pool);
    return kv;
  }

  runKvConformance(
    {
      name: 'postgres',
      create: async ({ now }) => kvOnNewPool(now),
      async destroy(kv) {
        await pools.get(kv)?.end();
      },
      createPeer: async (_kv, { now }) => kvOnNewPool(now),
    },
    { describe, it, afterAll, exclude: ['kv.races', 'kv.isolation.fuzz'] },
  );
});
