import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PostgresStore } from '../adapters/postgres/index.js';
import { SqliteStore } from '../adapters/sqlite/index.js';
import { MemoryStore } from '../src/agent/memory-store.js';
import { redactSecrets } from '../src/errors.js';
import type { ExtendedStore } from '../src/types.js';
import type { RawBaselines, RawEventLog, RawEventsLocation } from './raw/raw-baseline.js';
import { RawFileEvents } from './raw/raw-file-events.js';
import { RawPostgres } from './raw/raw-postgres.js';
import { RawSqlite } from './raw/raw-sqlite.js';

/** The backends a run can measure, in the order the report lists them. */
export const BACKEND_NAMES = ['memory', 'sqlite', 'sqlite-hybrid', 'postgres', 'postgres-hybrid'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/**
 * A store as the workloads see it: the SDK's interface, plus the KV API
 * (`store.kv`, SPEC §6) where the store has one; the KV workload checks its
 * shape when it runs.
 */
export type BenchStore = ExtendedStore & { readonly kv?: unknown };

/** Where a store's data lives, in a form a child process can reopen. */
export type StoreLocation =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string; fileStoreBaseDir?: string }
  | { kind: 'postgres'; url: string; schema: string; fileStoreBaseDir?: string };

/** Opens a store over `location` with the package's defaults (durable commits, fsynced event files). */
export function openStore(location: StoreLocation): BenchStore {
  switch (location.kind) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite':
      return new SqliteStore(
        location.fileStoreBaseDir === undefined
          ? { path: location.path }
          : { path: location.path, eventStorage: 'file', fileStoreBaseDir: location.fileStoreBaseDir },
      );
    case 'postgres':
      return new PostgresStore({
        connection: location.url,
        schema: location.schema,
        ...(location.fileStoreBaseDir === undefined
          ? {}
          : { eventStorage: 'file' as const, fileStoreBaseDir: location.fileStoreBaseDir }),
      });
  }
}

/** A fresh, empty store and its raw baselines, for one workload. */
export interface OpenedBackend {
  store: BenchStore;
  location: StoreLocation;
  raw: RawBaselines | undefined;
  /** Closes everything and removes the data (files, schemas). */
  dispose(): Promise<void>;
}

/** Opens the raw event baseline kept at `location` (written by this or another process). */
export function openRawEvents(location: RawEventsLocation): RawEventLog & { close(): Promise<void> } {
  switch (location.kind) {
    case 'sqlite':
      return new RawSqlite(location.path, 'FULL');
    case 'postgres':
      return RawPostgres.connect(location.url, location.schema);
    case 'files':
      return new RawFileEvents(location.dir);
  }
}

/** One backend of the run. */
export interface BenchBackend {
  readonly name: BackendName;
  readonly family: 'memory' | 'sqlite' | 'postgres';
  /** Events in append-only files (`eventStorage: 'file'`). */
  readonly hybrid: boolean;
  /**
   * What a resolved write survives, for the store and for its raw baselines,
   * from the settings the store and the baselines are opened with.
   */
  readonly durability: { store: string; raw: string | null };
  /** A fresh store (own file or schema) with its raw baselines; `label` names the workload. */
  open(label: string): Promise<OpenedBackend>;
}

/** A backend that could not run, and why. */
export interface SkippedBackend {
  backend: BackendName;
  reason: string;
}

/** The PostgreSQL server of a run: KODE_BENCH_POSTGRES_URL, else KODE_TEST_POSTGRES_URL, else the local default. */
export function postgresUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.KODE_BENCH_POSTGRES_URL || env.KODE_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test'
  );
}

/** Why the server cannot be used, or undefined when it answers. */
export async function postgresUnavailable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  // An unreachable server also emits 'error' on the client; the rejected connect() reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return `PostgreSQL at ${redactSecrets(url)} is unreachable (${redactSecrets((error as Error).message)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The server's `synchronous_commit` and `fsync`: the durability of every
 * commit of a client that sets neither (the store does not, nor does the raw
 * baseline, nor the SDK's PostgresStore).
 */
export async function serverDurability(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, application_name: 'kode-store-bench-admin' });
  await client.connect();
  try {
    const { rows } = await client.query<{ commit: string; fsync: string }>(
      "SELECT current_setting('synchronous_commit') AS commit, current_setting('fsync') AS fsync",
    );
    return `synchronous_commit=${rows[0]!.commit}, fsync=${rows[0]!.fsync}`;
  } finally {
    await client.end();
  }
}

export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'kode-store-bench-admin' });
  await client.connect();
  try {
    for (const schema of schemas)
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

let opened = 0;

/** A name unique to this process and open, short enough for PostgreSQL identifiers and file names. */
function uniqueName(label: string): string {
  opened++;
  return `${label.replace(/[^a-z0-9]+/gi, '_').slice(0, 20)}_${process.pid}_${opened}`;
}

class MemoryBackend implements BenchBackend {
  readonly name = 'memory';
  readonly family = 'memory';
  readonly hybrid = false;
  readonly durability = { store: 'none: in memory, nothing survives the process', raw: null };

  async open(): Promise<OpenedBackend> {
    const store = openStore({ kind: 'memory' });
    return { store, location: { kind: 'memory' }, raw: undefined, dispose: () => store.close() };
  }
}

/** Both sides of a hybrid backend append their event files this way (FileEventLog's default `fsync: true`). */
const FSYNCED_FILES = 'event files fdatasynced before an append resolves';

class SqliteBackend implements BenchBackend {
  readonly family = 'sqlite';
  readonly durability;

  constructor(
    readonly name: 'sqlite' | 'sqlite-hybrid',
    readonly hybrid: boolean,
    private readonly workspace: string,
  ) {
    // SqliteStore's default durability 'full': WAL, synchronous=FULL (adapters/sqlite/sqlite-connection.ts).
    const tables = 'every commit fsynced (WAL, synchronous=FULL)';
    this.durability = hybrid
      ? { store: `${tables}; ${FSYNCED_FILES}`, raw: `${tables}; ${FSYNCED_FILES} (O_APPEND + fdatasync)` }
      : { store: tables, raw: `better-sqlite3, ${tables}` };
  }

  async open(label: string): Promise<OpenedBackend> {
    const dir = join(this.workspace, uniqueName(`${this.name}_${label}`));
    mkdirSync(dir, { recursive: true });
    const location: StoreLocation = this.hybrid
      ? { kind: 'sqlite', path: join(dir, 'store.db'), fileStoreBaseDir: join(dir, 'events') }
      : { kind: 'sqlite', path: join(dir, 'store.db') };
    const store = openStore(location);
    // SqliteStore commits with synchronous=FULL unless told otherwise; the raw driver does the same.
    const rawPath = join(dir, 'raw.db');
    const rawSqlite = new RawSqlite(rawPath, 'FULL');
    const rawFilesDir = join(dir, 'raw-events');
    const rawFiles = this.hybrid ? new RawFileEvents(rawFilesDir) : undefined;
    const raw: RawBaselines = {
      label: 'better-sqlite3 (WAL, synchronous=FULL)',
      tables: rawSqlite,
      events: rawFiles ?? rawSqlite,
      eventsLocation: rawFiles ? { kind: 'files', dir: rawFilesDir } : { kind: 'sqlite', path: rawPath },
      ...(rawFiles ? { eventsLabel: 'append-only file (O_APPEND + fdatasync)' } : {}),
      kv: rawSqlite,
      async close() {
        await rawSqlite.close();
        await rawFiles?.close();
      },
    };
    return {
      store,
      location,
      raw,
      dispose: async () => {
        await store.close();
        await raw.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

class PostgresBackend implements BenchBackend {
  readonly family = 'postgres';
  readonly durability;

  /** @param server the server's durability settings (`serverDurability`): the store sets none of its own */
  constructor(
    readonly name: 'postgres' | 'postgres-hybrid',
    readonly hybrid: boolean,
    private readonly url: string,
    private readonly workspace: string,
    server: string,
  ) {
    const tables = `every commit at the server's setting (${server})`;
    this.durability = hybrid
      ? { store: `${tables}; ${FSYNCED_FILES}`, raw: `${tables}; ${FSYNCED_FILES} (O_APPEND + fdatasync)` }
      : { store: tables, raw: `pg, ${tables}` };
  }

  async open(label: string): Promise<OpenedBackend> {
    const name = uniqueName(label);
    const schema = `kode_bench_${name}`;
    const rawSchema = `kode_bench_raw_${name}`;
    const dir = join(this.workspace, `${this.name}_${name}`);
    const location: StoreLocation = this.hybrid
      ? { kind: 'postgres', url: this.url, schema, fileStoreBaseDir: join(dir, 'events') }
      : { kind: 'postgres', url: this.url, schema };
    const store = openStore(location);
    const rawPostgres = await RawPostgres.open(this.url, rawSchema);
    const rawFilesDir = join(dir, 'raw-events');
    const rawFiles = this.hybrid ? new RawFileEvents(rawFilesDir) : undefined;
    const raw: RawBaselines = {
      label: 'pg (one round trip per call, synchronous_commit=on)',
      tables: rawPostgres,
      events: rawFiles ?? rawPostgres,
      eventsLocation: rawFiles
        ? { kind: 'files', dir: rawFilesDir }
        : { kind: 'postgres', url: this.url, schema: rawSchema },
      ...(rawFiles ? { eventsLabel: 'append-only file (O_APPEND + fdatasync)' } : {}),
      kv: rawPostgres,
      async close() {
        await rawPostgres.close();
        await rawFiles?.close();
      },
    };
    return {
      store,
      location,
      raw,
      dispose: async () => {
        await store.close();
        await raw.close();
        await dropSchemas(this.url, [schema, rawSchema]);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/**
 * The backends of a run, among `wanted`. PostgreSQL is probed once: when it
 * does not answer, both PostgreSQL backends are skipped with the reason.
 */
export async function resolveBackends(
  wanted: readonly BackendName[],
  workspace: string,
  postgresUrl: string,
): Promise<{ backends: BenchBackend[]; skipped: SkippedBackend[] }> {
  const backends: BenchBackend[] = [];
  const skipped: SkippedBackend[] = [];
  let postgresProblem: string | undefined | null = null;
  let server = '';
  for (const name of BACKEND_NAMES) {
    if (!wanted.includes(name)) continue;
    if (name === 'memory') backends.push(new MemoryBackend());
    else if (name === 'sqlite' || name === 'sqlite-hybrid') {
      backends.push(new SqliteBackend(name, name === 'sqlite-hybrid', workspace));
    } else {
      if (postgresProblem === null) {
        postgresProblem = await postgresUnavailable(postgresUrl);
        if (postgresProblem === undefined) server = await serverDurability(postgresUrl);
      }
      if (postgresProblem !== undefined) skipped.push({ backend: name, reason: postgresProblem });
      else
        backends.push(new PostgresBackend(name, name === 'postgres-hybrid', postgresUrl, workspace, server));
    }
  }
  return { backends, skipped };
}
