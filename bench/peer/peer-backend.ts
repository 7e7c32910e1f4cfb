import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { type BenchBackend, dropSchemas, postgresUrlFromEnv, serverDurability } from '../backends.js';
import type { RawAgentTables, RawEventLog } from '../raw/raw-baseline.js';
import { RawFileEvents } from '../raw/raw-file-events.js';
import { RawPostgres } from '../raw/raw-postgres.js';
import { RawSqlite } from '../raw/raw-sqlite.js';
import type { PeerSdk, PeerStore } from './peer-sdk.js';

/**
 * The peer's side of one comparison: the SDK's store for the backend's
 * database, and a raw baseline configured exactly as the peer is. What the
 * peer's durability is comes from its code (SDK 2.7.5):
 *
 * - `SqliteStore` opens better-sqlite3 and sets no journal mode and no
 *   `synchronous`, so SQLite's defaults hold: the rollback journal
 *   (`journal_mode=delete`) and `synchronous=FULL` (better-sqlite3's build
 *   default, 2). Its tables are fsynced on every commit, as ours are.
 * - `PostgresStore` sets nothing either: its commits have the server's
 *   `synchronous_commit` (read from the server, below), as ours do.
 * - Both keep events in a `JSONStore`: one file per agent and channel,
 *   appended with `fs.appendFile` and never fsynced. An `appendEvent`
 *   resolves once the channel's buffer has been rewritten to a `.wal` file
 *   (written, not synced); the log file itself is appended by a 50 ms timer.
 *   An event survives a crash of the process, not a power loss.
 *
 * So "raw at the peer's durability" is: the same tables at the same
 * commit durability (SQLite with the peer's rollback journal), and events in
 * per-channel files without fsync.
 */
export interface PeerSide {
  readonly store: PeerStore;
  /** Which SDK store this is, e.g. `SDK SqliteStore 2.7.5`. */
  readonly label: string;
  readonly raw: { tables: RawAgentTables; events: RawEventLog };
  readonly durability: { peer: string; rawPeer: string };
  dispose(): Promise<void>;
}

/**
 * The JSONStore flushes its event buffers on a 50 ms timer that the SDK
 * stores' `close()` does not stop; waiting this long before removing the
 * directory keeps a late flush from recreating it.
 */
const JSONSTORE_FLUSH_WAIT_MS = 120;

let opened = 0;

/** Opens the peer's store and its raw baseline next to `backend`'s, in a directory or schema of their own. */
export async function openPeerSide(
  backend: BenchBackend,
  sdk: PeerSdk,
  workspace: string,
  label: string,
): Promise<PeerSide> {
  opened++;
  const name = `${label.replace(/[^a-z0-9]+/gi, '_').slice(0, 20)}_${process.pid}_${opened}`;
  const dir = join(workspace, `peer_${backend.name}_${name}`);
  mkdirSync(dir, { recursive: true });
  const rawFiles = new RawFileEvents(join(dir, 'raw-events'), { fsync: false, perChannel: true });
  const eventsDurability = 'events in per-channel files, never fsynced';
  if (backend.family === 'sqlite') {
    const store = new sdk.SqliteStore(join(dir, 'peer.db'), join(dir, 'peer-files'));
    const rawTables = new RawSqlite(join(dir, 'raw-peer.db'), 'FULL', 'DELETE');
    return {
      store,
      label: `SDK SqliteStore ${sdk.version}`,
      raw: { tables: rawTables, events: rawFiles },
      durability: {
        peer:
          'tables fsynced per commit (rollback journal, synchronous=FULL: SQLite defaults, unchanged); ' +
          `${eventsDurability} (JSONStore; a .wal rewrite per append, the log appended every 50 ms)`,
        rawPeer: `better-sqlite3 (rollback journal, synchronous=FULL); ${eventsDurability} (O_APPEND)`,
      },
      async dispose() {
        await sleep(JSONSTORE_FLUSH_WAIT_MS);
        await store.close();
        await rawTables.close();
        await rawFiles.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (backend.family !== 'postgres') throw new Error(`the SDK has no store for ${backend.name}`);
  const url = postgresUrlFromEnv();
  const schema = `kode_bench_peer_${name}`;
  const rawSchema = `kode_bench_rawpeer_${name}`;
  const admin = new pg.Client({ connectionString: url, application_name: 'kode-store-bench-admin' });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
  } finally {
    await admin.end();
  }
  // The SDK creates its tables unqualified: the search path puts them in the schema of this run.
  const store = new sdk.PostgresStore(
    {
      connectionString: url,
      options: `-c search_path=${schema}`,
      application_name: 'kode-store-bench-peer',
    },
    join(dir, 'peer-files'),
  );
  const rawTables = await RawPostgres.open(url, rawSchema);
  const server = await serverDurability(url);
  return {
    store,
    label: `SDK PostgresStore ${sdk.version}`,
    raw: { tables: rawTables, events: rawFiles },
    durability: {
      peer: `tables at the server's setting (${server}; the SDK sets nothing); ${eventsDurability} (JSONStore)`,
      rawPeer: `pg (${server}); ${eventsDurability} (O_APPEND)`,
    },
    async dispose() {
      await sleep(JSONSTORE_FLUSH_WAIT_MS);
      await store.close();
      await rawTables.close();
      await rawFiles.close();
      await dropSchemas(url, [schema, rawSchema]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
