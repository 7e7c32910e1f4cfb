import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { PostgresKvBackend } from '../../../adapters/postgres/postgres-kv.js';
import { runKvConformance } from '../../../conformance/kv/index.js';
import { createKvStore } from '../../../src/kv/kv-store.js';
import type { KvStore } from '../../../src/kv/kv-types.js';
import { describePgBouncer, usePgBouncer } from '../../helpers/pgbouncer.js';
import { useTestSchema } from '../../helpers/postgres.js';

/**
 * The whole KV suite (races and isolation fuzzing included) through
 * PgBouncer in transaction mode, with named prepared statements off: its
 * read-modify-write transactions, row locks and retries must hold when
 * every transaction may get another server connection.
 */
describePgBouncer('KV on PostgreSQL through PgBouncer (transaction mode)', () => {
  // Commits do not wait for the WAL flush, as in kv-postgres.test.ts; behind
  // a pooler a session setting goes into the pooler's connect_query (the
  // driver's `options` startup parameter is one PgBouncer refuses).
  const bouncer = usePgBouncer({
    poolMode: 'transaction',
    poolSize: 12,
    connectQuery: 'SET synchronous_commit = off',
  });
  const { schema } = useTestSchema('bouncer_kv');
  const pools = new Map<KvStore, pg.Pool>();

  /** Each store gets its own pool: peers are separate clients, as two processes would be. */
  function kvOnNewPool(now: () => number): KvStore {
    const pool = new pg.Pool({
      connectionString: bouncer.url,
      max: 6,
      application_name: 'kode-store-kv-bouncer',
    });
    const kv = createKvStore(new PostgresKvBackend(pool, { schema, preparedStatements: false }), { now });
    pools.set(kv, pool);
    return kv;
  }

  runKvConformance(
    {
      name: 'postgres-pgbouncer',
      create: async ({ now }) => kvOnNewPool(now),
      async destroy(kv) {
        await pools.get(kv)?.end();
      },
      createPeer: async (_kv, { now }) => kvOnNewPool(now),
    },
    { describe, it, afterAll },
  );
});
