import { afterAll, describe, it } from 'vitest';
import { runStoreConformance } from '../../../conformance/index.js';
import { describePostgres, postgresHarness, useTestSchema } from '../../helpers/postgres.js';

/**
 * The public conformance suite against PostgresStore with events in the
 * database: peers on the same schema, reopen, and a lock holder in another
 * process. Hybrid mode runs in postgres-hybrid-conformance.test.ts.
 */
describePostgres('PostgresStore conformance', () => {
  runStoreConformance(postgresHarness('postgres', useTestSchema('conformance'), false), {
    describe,
    it,
    afterAll,
  });
});
