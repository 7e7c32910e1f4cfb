import { afterAll, describe, it } from 'vitest';
import { runStoreConformance } from '../../../conformance/index.js';
import { describePostgres, postgresHarness, useTestSchema } from '../../helpers/postgres.js';

/**
 * The public conformance suite against PostgresStore in hybrid mode: events
 * in append-only files (a temporary directory per store, shared with its
 * peers), everything else in PostgreSQL.
 */
describePostgres('PostgresStore conformance, hybrid mode', () => {
  runStoreConformance(postgresHarness('postgres-hybrid', useTestSchema('conformance_hybrid'), true), {
    describe,
    it,
    afterAll,
  });
});
