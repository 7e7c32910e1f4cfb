import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, CorruptDataError, KodeStoreError, StoreClosedError } from '../../src/errors.js';
import type {
  ResolvedSqliteOptions,
  SqliteDatabase,
  SqliteRunResult,
  SqliteStatement,
} from './sqlite-config.js';
import { loadBetterSqlite3 } from './sqlite-driver.js';
import {
  AGENT_SCHEMA_MIGRATIONS,
  assertSchemaReadable,
  installedVersions,
  migrateSchema,
  type SqliteMigration,
} from './sqlite-schema.js';

/**
 * How long one SQLite call may block the thread waiting for another
 * connection's lock. better-sqlite3 is synchronous, so SQLite's own busy
 * handler would freeze the event loop for the whole wait; instead each
 * attempt gives up after a few milliseconds and `retryWhileBusy` waits
 * between attempts with timers.
 */
export const SQLITE_BUSY_SLICE_MS = 5;
const MAX_RETRY_DELAY_MS = 50;
/** The most writes one shared transaction takes; the rest wait for the next one. */
const MAX_GROUP_WRITES = 64;

/** True for SQLite's "another connection holds the lock" errors (SQLITE_BUSY and its extended codes). */
export function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code === 'SQLITE_LOCKED');
}

/**
 * SQLite's "this file is not a database" and "the database is damaged"
 * (SQLITE_NOTADB, SQLITE_CORRUPT and its extended codes) as a
 * `CorruptDataError` naming the file; any other error as it is.
 */
export function damagedDatabaseError(error: unknown, path: string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')))
    return error;
  const detail = `${code}: ${(error as Error).message}`;
  const message =
    code === 'SQLITE_NOTADB'
      ? `${path} is not a SQLite database, or its header is damaged (${detail})`
      : `${path} is damaged (${detail})`;
  return new CorruptDataError(message, { backend: 'sqlite', path, cause: error });
}

/** The files SQLite keeps beside a database in WAL mode. */
function walFiles(path: string): string[] {
  return [`${path}-wal`, `${path}-shm`];
}

function isMemoryPath(path: string): boolean {
  return path === ':memory:' || path === '';
}

interface QueuedWrite {
  body: () => unknown;
  /** Set by writes that wait for the lock by their own deadline; they run alone. */
  busyTimeoutMs: number | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type WriteOutcome = { failed: false; value: unknown } | { failed: true; error: unknown };

/** A database its owner opened, or a function that returns it once the owner has opened it. */
export type SqliteDatabaseSource = SqliteDatabase | (() => SqliteDatabase | Promise<SqliteDatabase>);

/**
 * One SQLite connection shared by a store's parts (tables, events, locks):
 * opened lazily on first use, set up (WAL, durability, migrations), with a
 * cache of prepared statements and write transactions that wait for other
 * processes without blocking the event loop.
 *
 * Writes of one connection run one after another in call order, in
 * `BEGIN IMMEDIATE` transactions: taking the write lock up front means a
 * transaction never fails half-way on a lock another connection took in the
 * meantime, and a retry re-runs the whole body on fresh data.
 *
 * Writes queued together share one transaction (group commit): a store
 * serving several agents at once otherwise pays one commit, and with
 * `synchronous=FULL` one fsync, per save, and rewrites the same index pages
 * in each. Every write runs in a savepoint of its own, so one that throws
 * undoes only its own changes; each promise resolves only after the shared
 * COMMIT, so a write is still durable when its promise resolves.
 */
export class SqliteConnection {
  /** The database handle, set as soon as it is opened (set-up statements need it). */
  private db: SqliteDatabase | undefined;
  /** True once set-up and migrations are done; until then callers wait for `opening`. */
  private ready = false;
  private opening: Promise<SqliteDatabase> | undefined;
  private readonly statements = new Map<string, SqliteStatement>();
  /** Read-only: the database had no WAL files when opened; any SQLite creates are removed again on close. */
  private hadNoWalFiles = false;
  private readonly queue: QueuedWrite[] = [];
  /** Set while writes are queued or running; settles when the queue is empty. */
  private draining: Promise<void> | undefined;
  private closed = false;
  /** Set by `over`: the database comes from its owner, who set it up and closes it. */
  private source: SqliteDatabaseSource | undefined;

  /**
   * A connection over a database its owner opened and set up (the KV
   * backend on a caller's better-sqlite3 database): no pragma is changed,
   * only the schema components asked for (`ensureSchema`) are installed,
   * and `close()` leaves the database open.
   */
  static over(
    source: SqliteDatabaseSource,
    options: { busyTimeoutMs: number; readOnly: boolean },
  ): SqliteConnection {
    const connection = new SqliteConnection({
      path: ':memory:',
      eventStorage: 'database',
      durability: 'full',
      lockLeaseMs: 0,
      ...options,
    });
    connection.source = source;
    return connection;
  }

  /**
   * @param runningOperations how many operations of the owner are running.
   *   While more are running than writes are queued, the others may queue a
   *   write soon: the queued writes then wait one turn of the event loop for
   *   them, so that they share the commit. A lone writer commits at once.
   */
  constructor(
    private readonly options: ResolvedSqliteOptions,
    private readonly runningOperations: () => number = () => 0,
  ) {}

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

  /** Runs a cached statement (an insert, update or delete). Call inside `read` / `write`. */
  run(sql: string, ...parameters: unknown[]): SqliteRunResult {
    return this.statement(sql).run(...parameters);
  }

  /** The first row of a cached statement, if any. Call inside `read` / `write`. */
  get<T>(sql: string, ...parameters: unknown[]): T | undefined {
    return this.statement(sql).get(...parameters) as T | undefined;
  }

  /** Every row of a cached statement. Call inside `read` / `write`. */
  all<T>(sql: string, ...parameters: unknown[]): T[] {
    return this.statement(sql).all(...parameters) as T[];
  }

  /**
   * A statement prepared for one use and not cached: dynamic SQL whose
   * shapes have no bound (KV queries), which would otherwise fill the cache.
   */
  prepareOnce(sql: string): SqliteStatement {
    return this.openDatabase().prepare(sql);
  }

  /**
   * Runs `body` (synchronous SQLite calls) outside any explicit transaction,
   * retrying while the database is busy. Single statements are atomic;
   * `snapshot` wraps several reads in one read transaction so they see one
   * consistent state.
   */
  async read<T>(body: () => T, options: { snapshot?: boolean } = {}): Promise<T> {
    await this.database();
    return this.retryWhileBusy(
      () => (options.snapshot ? this.transaction('BEGIN DEFERRED', body) : body()),
      this.options.busyTimeoutMs,
    );
  }

  /**
   * Runs `body` in a write transaction, after this connection's earlier
   * writes, possibly sharing the transaction with writes queued at the same
   * time (each in its own savepoint). `body` must only touch the database
   * (it may run more than once: when the lock was busy, or when the shared
   * transaction failed as a whole); act on its result after the promise
   * resolves. An explicit `busyTimeoutMs` makes the write run on its own.
   */
  write<T>(body: () => T, options: { busyTimeoutMs?: number } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        body,
        busyTimeoutMs: options.busyTimeoutMs,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      this.draining ??= this.drain();
    });
  }

  /**
   * Runs `body` with the database outside any transaction (what `VACUUM`
   * needs), after the writes queued so far, retrying while it is busy.
   * Every transaction of this connection runs synchronously, so none is
   * open while `body` runs.
   */
  async outsideTransaction<T>(body: (db: SqliteDatabase) => T): Promise<T> {
    const db = await this.database();
    await this.idle();
    return this.retryWhileBusy(() => body(db), this.options.busyTimeoutMs);
  }

  /**
   * Installs or upgrades a schema component the connection does not open
   * with (the KV layer's `kv`, created on first use), in a write queued
   * after the others; on a read-only connection, checks it is there at the
   * newest version instead. The agent component is installed on open.
   */
  async ensureSchema(component: string, migrations: readonly SqliteMigration[]): Promise<void> {
    const db = await this.database();
    if (this.options.readOnly) {
      await this.read(() => assertSchemaReadable(db, component, migrations, this.location));
    } else {
      await this.write(() => migrateSchema(db, component, migrations));
    }
  }

  /** The version of every schema component the database records (`agent`, `kv`). */
  async schemaVersions(): Promise<Map<string, number>> {
    const db = await this.database();
    return this.read(() => installedVersions(db));
  }

  /** Resolves once every write queued so far has finished. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
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
    if (db && !this.source && db !== this.options.database && db.open) db.close();
    this.removeCreatedWalFiles();
  }

  /** The file as named in messages. */
  get location(): string {
    if (this.source) return this.db ? resolve(this.db.name) : 'the SQLite database';
    return this.options.database?.name ?? resolve(this.options.path);
  }

  /**
   * A read-only connection to a database in WAL mode creates its -wal and
   * -shm files when they are missing, and cannot remove them: only a
   * read-write connection that closes last does, after checkpointing (with
   * nothing written there is nothing to copy, so the database file is left
   * as it was). Such a connection is opened and closed here, and SQLite's own
   * locks decide: if another connection came meanwhile, the files stay.
   */
  private removeCreatedWalFiles(): void {
    if (!this.hadNoWalFiles) return;
    this.hadNoWalFiles = false;
    if (!walFiles(this.options.path).some((name) => existsSync(name))) return;
    try {
      const Database = this.options.driver ?? loadBetterSqlite3();
      const db = new Database(this.options.path, { fileMustExist: true, timeout: SQLITE_BUSY_SLICE_MS });
      try {
        db.pragma('schema_version');
      } finally {
        db.close();
      }
    } catch {
      // A file we may not write (then SQLite could not have created them either) or one busy: they stay, harmless.
    }
  }

  private openDatabase(): SqliteDatabase {
    if (this.closed) throw new StoreClosedError('the store is closed', { backend: 'sqlite' });
    if (!this.db) throw new KodeStoreError('the database is not open yet', { backend: 'sqlite' });
    return this.db;
  }

  /**
   * `body` in one transaction: `BEGIN IMMEDIATE` for writes (the write lock
   * from the first statement), `BEGIN DEFERRED` for reads that must see one
   * state (a read transaction is a snapshot in WAL mode).
   */
  private transaction<T>(begin: 'BEGIN IMMEDIATE' | 'BEGIN DEFERRED', body: () => T): T {
    this.statement(begin).run();
    try {
      const result = body();
      this.statement('COMMIT').run();
      return result;
    } catch (error) {
      this.rollback();
      throw error;
    }
  }

  /** Runs the queued writes, a group at a time, until the queue is empty. */
  private async drain(): Promise<void> {
    try {
      // Callers resuming from the previous commit queue their next writes in
      // later ticks: wait for them while other operations are running.
      await Promise.resolve();
      while (this.queue.length > 0) {
        if (this.runningOperations() > this.queue.length) await new Promise((resume) => setImmediate(resume));
        const group = this.takeGroup();
        try {
          await this.database();
          await this.runGroup(group);
        } catch (error) {
          for (const write of group) write.reject(error);
        }
      }
    } finally {
      this.draining = undefined;
    }
  }

  /** The next writes to share a transaction: in call order, and alone if it has its own busy timeout. */
  private takeGroup(): QueuedWrite[] {
    const first = this.queue[0];
    if (first?.busyTimeoutMs !== undefined) return this.queue.splice(0, 1);
    let count = 0;
    while (
      count < this.queue.length &&
      count < MAX_GROUP_WRITES &&
      this.queue[count]?.busyTimeoutMs === undefined
    ) {
      count++;
    }
    return this.queue.splice(0, count);
  }

  /**
   * Commits `group` in one transaction and settles each write with its own
   * outcome. When the transaction fails as a whole (an error SQLite answers
   * by rolling back everything, or a failed COMMIT), the writes are run
   * again one transaction each, so that each gets the answer it would have
   * had alone.
   */
  private async runGroup(group: QueuedWrite[]): Promise<void> {
    const timeoutMs = group[0]?.busyTimeoutMs ?? this.options.busyTimeoutMs;
    if (group.length === 1) {
      const [write] = group as [QueuedWrite];
      try {
        write.resolve(
          await this.retryWhileBusy(() => this.transaction('BEGIN IMMEDIATE', write.body), timeoutMs),
        );
      } catch (error) {
        write.reject(error);
      }
      return;
    }
    let outcomes: WriteOutcome[];
    try {
      outcomes = await this.retryWhileBusy(
        () => this.transaction('BEGIN IMMEDIATE', () => this.savepoints(group)),
        timeoutMs,
      );
    } catch (error) {
      if (isBusyError(error)) {
        for (const write of group) write.reject(error);
        return;
      }
      for (const write of group) await this.runGroup([write]);
      return;
    }
    outcomes.forEach((outcome, i) => {
      const write = group[i]!;
      if (outcome.failed) write.reject(outcome.error);
      else write.resolve(outcome.value);
    });
  }

  /** Runs each write's body in a savepoint, so that one that throws undoes only its own changes. */
  private savepoints(group: readonly QueuedWrite[]): WriteOutcome[] {
    const db = this.openDatabase();
    return group.map((write): WriteOutcome => {
      this.statement('SAVEPOINT kode_write').run();
      try {
        const value = write.body();
        this.statement('RELEASE kode_write').run();
        return { failed: false, value };
      } catch (error) {
        // Busy, or the whole transaction is gone: the group fails (and is retried or run write by write).
        if (isBusyError(error) || !db.inTransaction) throw error;
        this.statement('ROLLBACK TO kode_write').run();
        this.statement('RELEASE kode_write').run();
        return { failed: true, error };
      }
    });
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
        if (!isBusyError(error)) throw damagedDatabaseError(error, this.location);
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
    if (this.source) {
      const db = typeof this.source === 'function' ? await this.source() : this.source;
      if (db !== this.db) this.statements.clear();
      this.db = db;
      return db;
    }
    const { options } = this;
    let db = options.database;
    if (!db) {
      const Database = options.driver ?? loadBetterSqlite3();
      if (options.readOnly) {
        db = this.openReadOnly(Database);
      } else {
        // Only the database's own directory is created: nothing outside the configured path.
        if (!isMemoryPath(options.path)) mkdirSync(dirname(resolve(options.path)), { recursive: true });
        db = new Database(options.path, { timeout: SQLITE_BUSY_SLICE_MS });
      }
    }
    this.db = db;
    try {
      db.pragma(`busy_timeout = ${SQLITE_BUSY_SLICE_MS}`);
      if (options.readOnly) {
        await this.retryWhileBusy(
          () => assertSchemaReadable(db, 'agent', AGENT_SCHEMA_MIGRATIONS, this.location),
          options.busyTimeoutMs,
        );
        return db;
      }
      // A new file gives freed pages back on `PRAGMA incremental_vacuum`
      // (store.compact()). It can only be chosen before the first table;
      // an existing file is converted on request only (compact --full).
      if ((db.pragma('page_count', { simple: true }) as number) === 0) db.pragma('auto_vacuum = INCREMENTAL');
      // Switching to WAL needs a moment of exclusive access; another process may be mid-transaction.
      await this.retryWhileBusy(() => db.pragma('journal_mode = WAL'), options.busyTimeoutMs);
      db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
      await this.retryWhileBusy(
        () => this.transaction('BEGIN IMMEDIATE', () => migrateSchema(db, 'agent', AGENT_SCHEMA_MIGRATIONS)),
        options.busyTimeoutMs,
      );
      return db;
    } catch (error) {
      this.db = undefined;
      this.statements.clear();
      if (db !== options.database && db.open) db.close();
      this.removeCreatedWalFiles();
      throw damagedDatabaseError(error, this.location);
    }
  }

  /** Opens the file read-only; it must exist (a read-only store never creates one). */
  private openReadOnly(Database: NonNullable<ResolvedSqliteOptions['driver']>): SqliteDatabase {
    const { path } = this.options;
    const file = statSync(path, { throwIfNoEntry: false });
    if (!file?.isFile()) {
      throw new ConfigError(
        `${this.location} ${file ? 'is not a file' : 'does not exist'}; a read-only store reads an existing database`,
        { backend: 'sqlite', operation: 'open', variable: 'path' },
      );
    }
    const hadNoWalFiles = !walFiles(path).some((name) => existsSync(name));
    const db = new Database(path, { readonly: true, fileMustExist: true, timeout: SQLITE_BUSY_SLICE_MS });
    // Looked at again on close: SQLite creates the files at the first read, not here.
    this.hadNoWalFiles = hadNoWalFiles;
    return db;
  }
}
