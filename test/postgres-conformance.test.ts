import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { PostgresStore } from '../adapters/postgres/index.js';
import { runStoreConformance, type StoreHarness } from '../conformance/index.js';
import { describePostgres, lockInChildProcess, useTestSchema } from './helpers/postgres.js';

/**
 * The public conformance suite against PostgresStore, in database mode and in
 * hybrid mode (events in files), with peers on the same schema, reopen, and
 * a lock holder in another process.
 */

/** Short lease, so the dead-holder case finishes quickly; renewal keeps live holders' locks. */
const LEASE_MS = 2_000;

function harness(
  name: string,
  place: { schema: string; url: string },
  hybrid: boolean,
): StoreHarness<PostgresStore> {
  const { schema } = place;
  const dirs = new Map<PostgresStore, string>();
  const open = (baseDir: string | undefined) => {
    const store = new PostgresStore({
      connection: { connectionString: place.url, max: 4, applicationName: 'kode-store-test-conformance' },
      schema,
      lockLeaseMs: LEASE_MS,
      ...(hybrid ? { eventStorage: 'file' as const, fileStoreBaseDir: baseDir } : {}),
    });
    if (baseDir) dirs.set(store, baseDir);
    return store;
  };
  return {
    name,
    create: async () => open(hybrid ? await mkdtemp(join(tmpdir(), 'kode-pg-hybrid-')) : undefined),
    destroy: async (store) => {
      await store.close();
      const dir = dirs.get(store);
      dirs.delete(store);
      // Peers share the directory: remove it only when no store uses it any more.
      if (dir && ![...dirs.values()].includes(dir)) await rm(dir, { recursive: true, force: true });
    },
    createPeer: async (store) => open(dirs.get(store)),
    reopen: async (store) => {
      const dir = dirs.get(store);
      await store.close();
      dirs.delete(store);
      return open(dir);
    },
    lockInOtherProcess: async (_store, agentId) => lockInChildProcess(schema, agentId, LEASE_MS),
  };
}

describePostgres('PostgresStore conformance', () => {
  runStoreConformance(harness('postgres', useTestSchema('conformance'), false), { describe, it, afterAll });
  runStoreConformance(harness('postgres-hybrid', useTestSchema('conformance_hybrid'), true), {
    describe,
    it,
    afterAll,
  });
});
