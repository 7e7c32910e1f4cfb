import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, it } from 'vitest';
import { SqliteKvBackend } from '../../../adapters/sqlite/sqlite-kv.js';
import { runKvConformance } from '../../../conformance/kv/index.js';
import { createKvStore } from '../../../src/kv/kv-store.js';
import type { KvStore } from '../../../src/kv/kv-types.js';

const directory = mkdtempSync(join(tmpdir(), 'kode-kv-sqlite-'));
const path = join(directory, 'kv.db');
const connections = new Map<KvStore, Database.Database>();

/** One connection to the test file, set up as the agent store sets up its own (WAL, short busy slices). */
function open(): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5');
  return db;
}

function kvOn(db: Database.Database, now: () => number): KvStore {
  const kv = createKvStore(new SqliteKvBackend(db), { now });
  connections.set(kv, db);
  return kv;
}

runKvConformance(
  {
    name: 'sqlite',
    create: async ({ now }) => kvOn(open(), now),
    async destroy(kv) {
      connections.get(kv)?.close();
    },
    // A second connection to the same file: its own transactions and locks.
    createPeer: async (_kv, { now }) => kvOn(open(), now),
  },
  { describe, it, afterAll },
);

afterAll(() => rmSync(directory, { recursive: true, force: true }));
