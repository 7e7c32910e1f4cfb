import { afterAll, describe, it } from 'vitest';
import { runStoreConformance } from '../../../conformance/index.js';
import { describePostgres, postgresHarness, useTestSchema } from '../../helpers/postgres.js';

/**
 * The public conformance suite against PostgresStore with `kode_events`
 * partitioned by hash of agent id (`eventPartitions`), in both event modes:
 * every statement that touches events (appends, reads and their paging,
 * delete, prune, fork, stats, consistency checks) runs on the partitioned
 * table, and in hybrid mode the registry's questions about event rows do.
 * Peers and the lock holder in another process open the same schema.
 */
describePostgres('PostgresStore conformance, events in 4 hash partitions', () => {
  runStoreConformance(
    postgresHarness('postgres-partitions', useTestSchema('conformance_partitions'), false, {
      eventPartitions: 4,
    }),
    { describe, it, afterAll },
  );
});

describePostgres('PostgresStore conformance, hybrid mode over events in 4 hash partitions', () => {
  runStoreConformance(
    postgresHarness('postgres-partitions-hybrid', useTestSchema('conformance_partitions_hybrid'), true, {
      eventPartitions: 4,
    }),
    { describe, it, afterAll },
  );
});
