import { afterAll, describe, it } from 'vitest';
import { runStoreConformance } from '../../../conformance/index.js';
import { describePgBouncer, usePgBouncer } from '../../helpers/pgbouncer.js';
import { postgresHarness, useTestSchema } from '../../helpers/postgres.js';

/**
 * The public conformance suite against PostgresStore in hybrid mode (events
 * in files, everything else in PostgreSQL) through PgBouncer in transaction
 * mode, with named prepared statements off. See
 * postgres-pgbouncer-conformance.test.ts for why the pool is small.
 */
describePgBouncer('PostgresStore conformance, hybrid mode, through PgBouncer (transaction mode)', () => {
  const bouncer = usePgBouncer({ poolMode: 'transaction', poolSize: 4 });
  const { schema } = useTestSchema('bouncer_conformance_hybrid');
  const place = {
    schema,
    get url() {
      return bouncer.url;
    },
  };
  runStoreConformance(
    postgresHarness('postgres-pgbouncer-hybrid', place, true, { preparedStatements: false }),
    { describe, it, afterAll },
  );
});
