import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, inject } from 'vitest';
import { PostgresStore } from '../../adapters/postgres/index.js';
import type { StoreHarness } from '../../conformance/index.js';
import { type ChildLock, startLockHolder } from './lock-holder-process.js';

/**
 * The PostgreSQL server of this test run (from test/setup/global-setup.ts),
 * and a private schema per test file so that files running at the same time,
 * and other engineers' runs, never see each other's tables.
 */

/** The server's URL, or null when PostgreSQL tests are skipped. */
export const postgresUrl: string | null = inject('postgresUrl');

/** Why PostgreSQL tests are skipped (null when they run). */
export const postgresSkipReason: string | null = postgresUrl
  ? null
  : (inject('skipReasons').postgres ?? 'no PostgreSQL server was found for this run');

/**
 * `describe` when a server is available; otherwise the block is registered
 * as skipped, with the reason in its name so that the report says why.
 */
export function describePostgres(name: string, body: () => void): void {
  if (postgresUrl) describe(name, body);
  else describe.skip(`${name} (skipped: ${postgresSkipReason})`, body);
}

/** The URL, for code that only runs inside `describePostgres`. */
export function requirePostgresUrl(): string {
  if (!postgresUrl) throw new Error(`PostgreSQL is not available: ${postgresSkipReason}`);
  return postgresUrl;
}

/** A schema name no other file or run uses. */
export function uniqueSchemaName(label: string): string {
  return `kode_test_${label}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Runs one statement on a short-lived admin connection (EXPLAIN, pg_terminate_backend, clean-up). */
export async function adminQuery<R extends Record<string, unknown> = Record<string, unknown>>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({
    connectionString: requirePostgresUrl(),
    application_name: 'kode-store-test-admin',
  });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Drops a schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await adminQuery(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
}

/**
 * Reserves a unique schema for the calling test file and drops it (and any
 * extra schemas registered with `also`) after the file's tests. Call at the
 * top of a `describePostgres` block.
 */
export function useTestSchema(label: string): { schema: string; url: string; also(schema: string): string } {
  const schema = uniqueSchemaName(label);
  const extra: string[] = [];
  afterAll(async () => {
    if (!postgresUrl) return;
    for (const name of [schema, ...extra]) await dropSchema(name);
  }, 60_000);
  return {
    schema,
    get url() {
      return requirePostgresUrl();
    },
    also(name: string) {
      extra.push(name);
      return name;
    },
  };
}

export type { ChildLock } from './lock-holder-process.js';

/** How a child's store connects: the test server by default; another URL (a pooler) and no prepared statements. */
export interface ChildConnection {
  url?: string;
  preparedStatements?: boolean;
}

/** Starts a process that takes `agentId`'s lock on `schema` with the given lease. */
export function lockInChildProcess(
  schema: string,
  agentId: string,
  leaseMs: number,
  connection: ChildConnection = {},
): ChildLock {
  return startLockHolder('postgres-lock-holder.ts', [
    connection.url ?? requirePostgresUrl(),
    schema,
    agentId,
    String(leaseMs),
    String(connection.preparedStatements ?? true),
  ]);
}

/** A statement a store sent, as recorded by `recordingPool`. */
export interface RecordedStatement {
  text: string;
  values: unknown[];
}

/**
 * A real `pg.Pool` whose statements are recorded (pool-level and on checked-out
 * clients), to count round trips and to EXPLAIN exactly what a store sends.
 */
export function recordingPool(options: { max?: number; applicationName?: string } = {}): {
  pool: pg.Pool;
  statements: RecordedStatement[];
} {
  const pool = new pg.Pool({
    connectionString: requirePostgresUrl(),
    max: options.max ?? 4,
    application_name: options.applicationName ?? 'kode-store-test-recording',
  });
  const statements: RecordedStatement[] = [];
  // Pool-level queries run on a checked-out client too, so recording at the
  // client sees every statement exactly once.
  pool.on('acquire', (client) => {
    const marked = client as pg.PoolClient & { recording?: boolean };
    if (marked.recording) return;
    marked.recording = true;
    const clientQuery = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
      const [config, values] = args as [{ text?: string; values?: unknown[] } | string, unknown];
      if (typeof config === 'string')
        statements.push({ text: config, values: Array.isArray(values) ? values : [] });
      else if (config && typeof config.text === 'string') {
        statements.push({ text: config.text, values: config.values ?? [] });
      }
      return clientQuery(...args);
    };
  });
  return { pool, statements };
}

/** Short lease, so the dead-holder case finishes quickly; renewal keeps live holders' locks. */
const CONFORMANCE_LEASE_MS = 2_000;

/**
 * A conformance harness for PostgresStore on `place.schema`: fresh stores,
 * peers on the same schema (and event directory in hybrid mode), reopen, and
 * a lock holder in a child process. `preparedStatements: false` is for a
 * pooler in transaction mode (the child holding a lock uses the same URL and
 * setting); `eventPartitions` lays the events table out in hash partitions.
 */
export function postgresHarness(
  name: string,
  place: { schema: string; url: string },
  hybrid: boolean,
  options: { preparedStatements?: boolean; eventPartitions?: number } = {},
): StoreHarness<PostgresStore> {
  const { schema } = place;
  const preparedStatements = options.preparedStatements ?? true;
  const { eventPartitions } = options;
  const dirs = new Map<PostgresStore, string>();
  const open = (baseDir: string | undefined) => {
    const store = new PostgresStore({
      connection: { connectionString: place.url, max: 4, applicationName: 'kode-store-test-conformance' },
      schema,
      lockLeaseMs: CONFORMANCE_LEASE_MS,
      preparedStatements,
      ...(eventPartitions === undefined ? {} : { eventPartitions }),
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
    lockInOtherProcess: async (_store, agentId) =>
      lockInChildProcess(schema, agentId, CONFORMANCE_LEASE_MS, { url: place.url, preparedStatements }),
  };
}
