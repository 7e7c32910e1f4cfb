import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KodeStoreError, StoreClosedError } from '../../src/errors.js';
import type { ResolvedSqliteOptions, SqliteDatabase, SqliteStatement } from './sqlite-config.js';
import { loadBetterSqlite3 } from './sqlite-driver.js';
import { AGENT_SCHEMA_MIGRATIONS, migrateSchema } from './sqlite-schema.js';

/**
 * How long one SQLite call may block the thread waiting for another
 * connection's lock. better-sqlite3 is synchronous, so SQLite's own busy
 * handler would freeze the event loop for the whole wait; instead each
 * attempt gives up after a few milliseconds and `retryWhileBusy` waits
 * between attempts with timers.
 */
export const SQLITE_BUSY_SLICE_MS = 5;
const MAX_RETRY_DELAY_MS = 50;

/** True for SQLite's "another connection holds the lock" errors (SQLITE_BUSY and its extended codes). */
export function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code === 'SQLITE_LOCKED');
}

function isMemoryPath(path: string): boolean {
  return path === ':memory:' || path === '';
}

/**
 * One SQLite connection shared by a store's parts (tables, events, locks):
 * opened lazily on first use, set up (WAL, durability, migrations), with a
 * cache of prepared statements and write transactions that wait for other
 * processes without blocking the event loop.
 *
 * Writes of one connection run one after another in call order, each in its
 * own `BEGIN IMMEDIATE` transaction: taking the write lock up front means a
 * transaction never fails half-way on a lock another connection took in the
 * meantime, and a retry re-runs the whole body on fresh data.
 */
export class SqliteConnection {
  /** The database handle, set as soon as it is opened (set-up statements need it). */
  private db: SqliteDatabase | undefined;
  /** True once set-up and migrations are done; until then callers wait for `opening`. */
  private ready = false;
  private opening: Promise<SqliteDatabase> | undefined;
  private readonly statements = new Map<string, SqliteStatement>();
  private writeTail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: ResolvedSqliteOptions) {}

  /** True when the data lives only in this process (`:memory:`). */
  get inMemory(): boolean {
    return this.options.database?.memory ?? isMemoryPath(this.options.path);
  }

  /** The open database, opening and migrating it on first use. A failed open is retried by the next call. */
  async database(): Promise<SqliteDatabase> {
    if (this.closed) throw new StoreClosedError('the store is closed', { backend: 'sqlite' });
    if (this.ready && this.db) return this.db;
    this.opening ??= this.open().then(
      (db) => {
        this.ready = true;
        return db;
      },
      (error: unknown) => {
        this.opening = undefined;
        throw error;
      },
    );
    return this.opening;
  }

  /** A prepared statement, prepared once per connection and reused. Call only while open. */
  statement(sql: string): SqliteStatement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.openDatabase().prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /**
   * Runs `body` (synchronous SQLite calls) outside any explicit transaction,
   * retrying while the database is busy. Single statements are atomic;
   * `snapshot` wraps several reads in one read transaction so they see one
   * consistent state.
   */
  async read<T>(body: () => T, options: { snapshot?: boolean } = {}): Promise<T> {
    await this.database();
    return this.retryWhileBusy(() => {
      if (!options.snapshot) return body();
      this.statement('BEGIN DEFERRED').run();
      try {
        const result = body();
        this.statement('COMMIT').run();
        return result;
      } catch (error) {
        this.rollback();
        throw error;
      }
    }, this.options.busyTimeoutMs);
  }

  /**
   * Runs `body` in a write transaction, after this connection's earlier
   * writes. `body` must only touch the database (it may run more than once
   * when the lock was busy); act on its result after the promise resolves.
   */
  write<T>(body: () => T, options: { busyTimeoutMs?: number } = {}): Promise<T> {
    const attempt = async (): Promise<T> => {
      await this.database();
      return this.retryWhileBusy(
        () => this.transaction(body),
        options.busyTimeoutMs ?? this.options.busyTimeoutMs,
      );
    };
    const result = this.writeTail.then(attempt, attempt);
    this.writeTail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every write queued so far has finished. */
  async idle(): Promise<void> {
    let tail: Promise<unknown>;
    do {
      tail = this.writeTail;
      await tail;
    } while (tail !== this.writeTail);
  }

  /** Waits for queued writes, then closes the database unless it was injected. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.idle();
    this.closed = true;
    await this.opening?.catch(() => undefined);
    const db = this.db;
    this.db = undefined;
    this.ready = false;
    this.statements.clear();
    if (db && db !== this.options.database && db.open) db.close();
  }

  private openDatabase(): SqliteDatabase {
    if (this.closed) throw new StoreClosedError('the store is closed', { backend: 'sqlite' });
    if (!this.db) throw new KodeStoreError('the database is not open yet', { backend: 'sqlite' });
    return this.db;
  }

  private transaction<T>(body: () => T): T {
    this.statement('BEGIN IMMEDIATE').run();
    try {
      const result = body();
      this.statement('COMMIT').run();
      return result;
    } catch (error) {
      this.rollback();
      throw error;
    }
  }

  private rollback(): void {
    const db = this.db;
    // A failed COMMIT or an error SQLite already rolled back leaves no transaction open.
    if (db?.open && db.inTransaction) this.statement('ROLLBACK').run();
  }

  /**
   * Calls `attempt` until it does not fail with SQLITE_BUSY, waiting between
   * attempts with growing, jittered delays (so that waiting processes do not
   * retry in lockstep) for at most `timeoutMs` in total.
   */
  private async retryWhileBusy<T>(attempt: () => T, timeoutMs: number): Promise<T> {
    const started = Date.now();
    let delay = 1;
    for (;;) {
      this.openDatabase();
      try {
        return attempt();
      } catch (error) {
        if (!isBusyError(error)) throw error;
        const waited = Date.now() - started;
        if (waited >= timeoutMs) {
          // A driver-level error (keeping SQLite's code), so that the store's
          // operation frame wraps it with the operation and the agent id.
          throw Object.assign(
            new Error(
              `the database stayed locked by another connection for ${waited} ms (busyTimeoutMs ${timeoutMs})`,
              { cause: error },
            ),
            { code: (error as { code: string }).code },
          );
        }
        await sleep(Math.min(timeoutMs - waited, delay * (0.5 + Math.random())));
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  private async open(): Promise<SqliteDatabase> {
    const { options } = this;
    let db = options.database;
    if (!db) {
      const Database = options.driver ?? loadBetterSqlite3();
      // Only the database's own directory is created: nothing outside the configured path.
      if (!isMemoryPath(options.path)) mkdirSync(dirname(resolve(options.path)), { recursive: true });
      db = new Database(options.path, { timeout: SQLITE_BUSY_SLICE_MS });
    }
    this.db = db;
    try {
      db.pragma(`busy_timeout = ${SQLITE_BUSY_SLICE_MS}`);
      // Switching to WAL needs a moment of exclusive access; another process may be mid-transaction.
      await this.retryWhileBusy(() => db.pragma('journal_mode = WAL'), options.busyTimeoutMs);
      db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
      await this.retryWhileBusy(
        () => this.transaction(() => migrateSchema(db, 'agent', AGENT_SCHEMA_MIGRATIONS)),
        options.busyTimeoutMs,
      );
      return db;
    } catch (error) {
      this.db = undefined;
      this.statements.clear();
      if (db !== options.database && db.open) db.close();
      throw error;
    }
  }
}
