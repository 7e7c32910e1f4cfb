import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { PostgresKvBackend } from '../adapters/postgres/postgres-kv.js';
import { runKvConformance } from '../conformance/kv/index.js';
import type { KvStore } from '../src/kv/kv-types.js';
import { createKvStore } from '../src/kv/kv-store.js';
import { describePostgres, useTestSchema } from './helpers/postgres.js';

describePostgres('KV on PostgreSQL', () => {
  const target = useTestSchema('kv');
  const pools = new Map<KvStore, pg.Pool>();

  /** Each store gets its own pool: peers are separate clients, as two processes would be. */
  function kvOnNewPool(now: () => number): KvStore {
    const pool = new pg.Pool({ connectionString: target.url, max: 6, application_name: 'kode-store-kv-test' });
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
    { describe, it, afterAll },
  );
});
