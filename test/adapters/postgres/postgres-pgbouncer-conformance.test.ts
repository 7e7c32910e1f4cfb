import { afterAll, describe, it } from 'vitest';
import { runStoreConformance } from '../../../conformance/index.js';
import { describePgBouncer, usePgBouncer } from '../../helpers/pgbouncer.js';
import { postgresHarness, useTestSchema } from '../../helpers/postgres.js';

/**
 * The public conformance suite against PostgresStore (events in the
 * database) through PgBouncer in transaction mode, with named prepared
 * statements off: every transaction of the store may run on a different
 * server connection than the one before, and nothing the store relies on
 * may live in a server session. A pool of 4 server connections is shared by
 * every store of the suite, so session state left behind would meet
 * another store.
 */
describePgBouncer('PostgresStore conformance through PgBouncer (transaction mode)', () => {
  const bouncer = usePgBouncer({ poolMode: 'transaction', poolSize: 4 });
  const { schema } = useTestSchema('bouncer_conformance');
  const place = {
    schema,
    get url() {
      return bouncer.url;
    },
  };
  runStoreConformance(postgresHarness('postgres-pgbouncer', place, false, { preparedStatements: false }), {
    describe,
    it,
    afterAll,
  });
});
