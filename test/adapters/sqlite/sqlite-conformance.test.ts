import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import { type OtherProcessLock, runStoreConformance, type StoreHarness } from '../../../conformance/index.js';
import { ChildScript } from '../../child/sqlite-child-process.js';

/**
 * The public conformance suite against SqliteStore on a file database, in
 * database mode and in hybrid mode (events in files): peers are second
 * store objects on the same file, reopen closes and opens the file again,
 * and a lock holder runs in a child process.
 */

/** Short lease, so the dead-holder case finishes quickly; renewal keeps live holders' locks. */
const LEASE_MS = 2_000;

function lockInChildProcess(path: string, agentId: string): OtherProcessLock {
  const child = ChildScript.start('sqlite-lock-holder.ts', [path, agentId, String(LEASE_MS)]);
  return {
    acquired: child.waitFor('acquired').then(() => undefined),
    release: async () => {
      child.send('release');
      await child.waitFor('released');
      await child.exited;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

/**
 * Every store of one harness works on the same database file (and event
 * directory): the cases use fresh agent ids, and one shared file is what an
 * application has. Removed once the suite is done.
 */
function harness(name: string, hybrid: boolean, dirs: string[]): StoreHarness<SqliteStore> {
  let shared: Promise<string> | undefined;
  const open = (dir: string) =>
    new SqliteStore({
      path: join(dir, 'agents.db'),
      lockLeaseMs: LEASE_MS,
      ...(hybrid ? { eventStorage: 'file' as const, fileStoreBaseDir: join(dir, 'events') } : {}),
    });
  return {
    name,
    create: async () => {
      shared ??= mkdtemp(join(tmpdir(), `kode-${name}-`)).then((dir) => {
        dirs.push(dir);
        return dir;
      });
      return open(await shared);
    },
    destroy: (store) => store.close(),
    createPeer: async (store) => open(dirname(store.path)),
    reopen: async (store) => {
      await store.close();
      return open(dirname(store.path));
    },
    lockInOtherProcess: async (store, agentId) => lockInChildProcess(store.path, agentId),
  };
}

describe('SqliteStore conformance', () => {
  const dirs: string[] = [];
  // Registered first, so it runs after the suite's own teardown (vitest runs after-hooks in reverse).
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });
  runStoreConformance(harness('sqlite', false, dirs), { describe, it, afterAll });
  runStoreConformance(harness('sqlite-hybrid', true, dirs), { describe, it, afterAll });
});
