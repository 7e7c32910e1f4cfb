import { createHash } from 'node:crypto';
import { type AnyKodeStoreError, type ErrorContext, StoreClosedError } from '../../src/errors.js';
import {
  loadPgDriver,
  type PgModule,
  type PgPoolConfig,
  type PgRowQuery,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryConfig,
  type PostgresTypeParsers,
  quoteIdentifier,
} from './postgres-config.js';
import {
  classifyPostgresError,
  hearPoolErrors,
  isPostgresConnectionLoss,
  type PostgresBounds,
  wrapPostgresError,
} from './postgres-errors.js';
import {
  DEFAULT_MAX_REPLICA_LAG_MS,
  type PostgresReplicaStatus,
  type Replica,
  ReplicaSet,
} from './postgres-replicas.js';
import { assertSchemaReadable, migrateSchema, type SchemaComponent } from './postgres-schema.js';

const BACKEND = 'postgres';

/** Type oids whose text form the store reads as JavaScript numbers. */
const NUMBER_OIDS = new Set([
  20, // int8: bigserial ids, revisions, counts
  21, // int2
  23, // int4
  26, // oid
  700, // float4
  701, // float8: epoch-ms timestamps
  1700, // numeric: sums of relation sizes
]);
const BOOL_OID = 16;
const identity = (value: string): string => value;
const toBoolean = (value: string): boolean => value === 't';

/**
 * Per-query type parsing. `pg` returns int8 and numeric as strings by
 * default, and the usual fix (`pg.types.setTypeParser`) changes every pool in
 * the process, including the application's own. Handing this table to each
 * query instead keeps the change local. Every column the store selects is
 * text, a number type or boolean, so the table is complete for its queries.
 */
export const EXACT_TYPES: PostgresTypeParsers = {
  getTypeParser(oid: number) {
    if (NUMBER_OIDS.has(oid)) return Number;
    if (oid === BOOL_OID) return toBoolean;
    return identity;
  },
};

/**
 * A fixed statement of the store, built once: run as a named prepared
 * statement (parsed and planned once per connection) when `name` is set.
 */
export interface Statement {
  readonly text: string;
  readonly name: string | undefined;
}

/** One statement, with bound parameters. */
export interface Queryable {
  query<R>(statement: string | Statement, values?: unknown[]): Promise<R[]>;
}

/** What `pg` is handed for a statement: the dynamic ones (query APIs) are never prepared. */
function queryConfig(statement: string | Statement, values: unknown[]): PostgresQueryConfig {
  if (typeof statement === 'string') return { text: statement, values, types: EXACT_TYPES };
  return statement.name === undefined
    ? { text: statement.text, values, types: EXACT_TYPES }
    : { name: statement.name, text: statement.text, values, types: EXACT_TYPES };
}

/** A connection inside an open transaction. */
export type Transaction = Queryable;

/** True for failures of the connection itself (refused, reset, terminated by the server). */
export function isConnectionError(error: unknown): boolean {
  return isPostgresConnectionLoss(error);
}

/** Thrown inside a transaction body to roll back and run it again (a lost insert race). */
export class RetryTransaction extends Error {}

/** How often a transaction that lost to a concurrent one is run again. */
const MAX_TRANSACTION_ATTEMPTS = 50;
/** SQLSTATEs after which a transaction is simply run again: serialization failure, deadlock. */
const RETRYABLE = new Set(['40001', '40P01']);

/** A transaction's end: committed with a value, or rolled back cleanly after a failure. */
type Outcome<T> = { ok: true; value: T } | { ok: false; failed: unknown };

/** A pool, or a function returning it (asked again after a failed first use). */
export type PostgresPoolSource = PostgresPool | (() => PostgresPool | Promise<PostgresPool>);

/** What the connection layer needs to know; `ResolvedPostgresSettings` is one. */
export interface PostgresDatabaseSettings {
  schema: string;
  preparedStatements: boolean;
  readOnly: boolean;
  /** The bounds in effect, named by `TimeoutError`s. */
  bounds: PostgresBounds;
  /** Pool settings when the database opens (and ends) its own pool. */
  poolConfig?: PgPoolConfig;
  /** A pool handed in, never ended. */
  pool?: PostgresPoolSource;
  /** Pool settings of read replicas the database opens (and ends). */
  replicaPoolConfigs?: PgPoolConfig[];
  /** Read replicas handed in, never ended. */
  replicaPools?: PostgresPool[];
  /** How stale a replica's answers may be (see postgres-replicas.ts). */
  maxReplicaLagMs?: number;
}

/**
 * The adapter's one connection layer, under the agent backend and the KV
 * backend alike: opens the pool lazily, installs each schema component on
 * first use (and again on the next call if that failed, so a store created
 * while the server is down recovers once it is back), names and prepares the
 * fixed statements, and runs statements and transactions with exact type
 * parsing and one retry rule.
 *
 * Connection failures never surface as an `'error'` event nobody listens to
 * (which would crash the process): the pool and every client it makes or
 * hands out get a listener (`hearPoolErrors`), and failures reach callers as
 * rejected promises.
 */
export class PostgresConnection {
  readonly schema: string;
  /** The bounds in effect, named by `TimeoutError`s. */
  readonly bounds: PostgresBounds;
  private pool: PostgresPool | undefined;
  private readonly ownsPool: boolean;
  private opening: Promise<PostgresPool> | undefined;
  /** The `pg` module, for the query objects of `eachRow` (loaded once). */
  private driver: Promise<PgModule> | undefined;
  /** Per component name: its migration (or read-only check), done or under way. */
  private readonly installing = new Map<string, Promise<void>>();
  private closed = false;
  private detachPool: (() => void) | undefined;
  private replicas: Promise<ReplicaSet> | undefined;
  private readonly detachReplicas: Array<() => void> = [];

  /**
   * @param component what every statement needs installed first (the agent
   *   store's tables); a KV backend of its own installs only its own, in `open()`.
   */
  constructor(
    private readonly settings: PostgresDatabaseSettings,
    private readonly component?: SchemaComponent,
  ) {
    this.schema = settings.schema;
    this.bounds = settings.bounds;
    this.ownsPool = settings.pool === undefined;
    if (settings.pool !== undefined && typeof settings.pool !== 'function') this.adoptPool(settings.pool);
  }

  /**
   * A fixed statement, prepared by name unless `preparedStatements` is off.
   * The name is derived from the text (which holds the schema), so equal
   * texts share one prepared statement per connection and different texts
   * never collide; `prefix` tells the components apart in
   * `pg_prepared_statements`. Only for the store's fixed statements: each
   * distinct text stays prepared on every pooled connection.
   */
  statement(text: string, prefix = 'kode_'): Statement {
    const name = this.settings.preparedStatements
      ? `${prefix}${createHash('sha256').update(text).digest('hex').slice(0, 32)}`
      : undefined;
    return { text, name };
  }

  /** `"schema"."name"`, for building statements once per store. */
  table(name: string): string {
    return `${quoteIdentifier(this.schema)}.${quoteIdentifier(name)}`;
  }

  /** The typed error for a pg error (`undefined`: leave it to the generic reading). */
  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return classifyPostgresError(error, ctx, this.bounds);
  }

  /** Any error of the adapter as a typed error naming the operation. */
  wrapError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError {
    return wrapPostgresError(error, ctx, this.bounds);
  }

  private adoptPool(pool: PostgresPool): PostgresPool {
    this.detachPool = hearPoolErrors(pool);
    this.pool = pool;
    return pool;
  }

  private async openPool(): Promise<PostgresPool> {
    // An operation still in flight when the store closed must not open a new pool.
    if (this.closed) throw poolClosedError('connect');
    if (this.pool) return this.pool;
    this.opening ??= (async () => {
      const source = this.settings.pool;
      if (source !== undefined) return this.adoptPool(typeof source === 'function' ? await source() : source);
      const pg = await loadPgDriver();
      return this.adoptPool(new pg.Pool({ ...this.settings.poolConfig }));
    })().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /**
   * Resolves once the pool exists and the database's component is installed
   * (migrated; read-only: checked to be current); retried on the next call
   * after a failure.
   */
  async ready(): Promise<PostgresPool> {
    return this.component === undefined ? this.openPool() : this.install(this.component);
  }

  /**
   * Migrates `component` (read-only: checks it is current) once per
   * database, through the one migration runner. A failure is retried by the
   * next call; a pool from a function is then asked for again, as the next
   * call may be given a working one.
   */
  async install(component: SchemaComponent): Promise<PostgresPool> {
    const pool = await this.openPool();
    let attempt = this.installing.get(component.name);
    if (attempt === undefined) {
      const installing = this.withClient(pool, (tx) =>
        this.settings.readOnly
          ? assertSchemaReadable(tx, this.schema, component)
          : migrateSchema(tx, this.schema, component),
      );
      attempt = installing;
      this.installing.set(component.name, installing);
      installing.catch(() => {
        if (this.installing.get(component.name) !== installing) return;
        this.installing.delete(component.name);
        if (typeof this.settings.pool === 'function' && this.pool === pool) {
          this.detachPool?.();
          this.pool = undefined;
        }
      });
    }
    await attempt;
    return pool;
  }

  /**
   * Runs one statement on any pooled connection (one round trip).
   * `retry`: the statement may run twice (it is read-only or idempotent), so
   * a connection that died under it is retried once on a fresh connection.
   */
  async query<R>(statement: string | Statement, values: unknown[] = [], retry = false): Promise<R[]> {
    const pool = await this.ready();
    const config = queryConfig(statement, values);
    try {
      return (await pool.query<R>(config)).rows;
    } catch (error) {
      if (this.closed) throw poolClosedError('query');
      if (!retry || !isConnectionError(error)) throw error;
      return (await pool.query<R>(config)).rows;
    }
  }

  /**
   * Runs one read statement on any pooled connection and hands its rows to
   * the sink `start()` returns, one at a time as they arrive, each an array
   * of column values in select order; resolves once the last has been
   * handed over. For reads that keep only part of each row, or keep it in a
   * form of their own: no result gathers the rows. Read with raw `pg` over
   * 1,000,000 rows of ~1.5 KB in pages of 680, a reader grew by 72-91 MiB
   * when `pg` gathered each page into a result and by 26-35 MiB when the
   * rows came one by one, and read 1.3-1.5x faster (same process,
   * interleaved runs).
   *
   * Always retried once on a fresh connection when the connection died
   * under it (the statement must be read-only), with a fresh sink: rows a
   * failed attempt handed to the first sink are for the caller to drop.
   */
  async eachRow(
    statement: Statement,
    values: unknown[],
    start: () => (row: unknown[]) => void,
  ): Promise<void> {
    const pool = await this.ready();
    const attempt = () =>
      this.withClient(pool, async (_tx, client) => {
        const Query = await this.queryClassOf(client);
        return new Promise<void>((resolve, reject) => {
          const query = new Query({
            ...queryConfig(statement, values),
            rowMode: 'array',
            callback: (error) => (error ? reject(error) : resolve()),
          });
          const sink = start();
          query.on('row', (row, result) => {
            sink(row);
            // pg also gathers every row into the result it gives the
            // callback (it does for any query with a callback); those
            // rows would keep each page's values alive as long as the page.
            result.rows.length = 0;
          });
          // PostgresPoolClient types only what every pool must offer; a
          // pg client also takes a query object of its own (a submittable).
          (client as unknown as { query(query: PgRowQuery): unknown }).query(query);
        });
      });
    try {
      await attempt();
    } catch (error) {
      if (this.closed) throw poolClosedError('query');
      if (!isConnectionError(error)) throw error;
      await attempt();
    }
  }

  /**
   * The query class of the client's own copy of pg: pg's clients (and its
   * native ones) carry it as `Client.Query`, so a pool injected from a copy
   * of pg this package cannot resolve still reads events. Any other client
   * gets the Query of the pg this package loads.
   */
  private async queryClassOf(client: PostgresPoolClient): Promise<PgModule['Query']> {
    const own = (client.constructor as { Query?: unknown } | undefined)?.Query;
    if (typeof own === 'function') return own as PgModule['Query'];
    this.driver ??= loadPgDriver();
    return (await this.driver).Query;
  }

  /**
   * Runs `body` in one transaction on one connection; `begin` may ask for
   * another isolation level. The one retry rule of the adapter: a failure
   * before COMMIT was sent rolled back everything, so when the connection
   * died the whole transaction runs once more on a fresh connection, and
   * after a serialization failure, a deadlock or a `RetryTransaction` (a
   * lost insert race) it runs again, up to 50 times; a failure during
   * COMMIT is reported as is (its outcome is unknown). A body may therefore
   * run more than once and must have no effect outside the transaction.
   */
  async transaction<T>(body: (tx: Transaction) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    return this.transactionOn(await this.ready(), body, begin, true);
  }

  /** `transaction` on `pool`; without `retry`, the first failure is thrown (a replica's: the primary runs it then). */
  private async transactionOn<T>(
    pool: PostgresPool,
    body: (tx: Transaction) => Promise<T>,
    begin: string,
    retry: boolean,
  ): Promise<T> {
    let connectionRetried = false;
    for (let attempt = 1; ; attempt++) {
      let committing = false;
      try {
        const outcome = await this.withClient(pool, async (tx): Promise<Outcome<T>> => {
          await tx.query(begin);
          try {
            const value = await body(tx);
            committing = true;
            await tx.query('COMMIT');
            return { ok: true, value };
          } catch (error) {
            if (committing) throw error;
            // Rolled back, the connection is clean and goes back to the pool;
            // when ROLLBACK fails, withClient discards it.
            await tx.query('ROLLBACK').catch(() => {
              throw error;
            });
            return { ok: false, failed: error };
          }
        });
        if (outcome.ok) return outcome.value;
        throw outcome.failed;
      } catch (error) {
        if (this.closed) throw poolClosedError('transaction');
        if (committing || !retry) throw error;
        if (!connectionRetried && isConnectionError(error)) {
          connectionRetried = true;
          continue;
        }
        const code = (error as { code?: unknown } | null)?.code;
        const lost = error instanceof RetryTransaction || (typeof code === 'string' && RETRYABLE.has(code));
        if (!lost || attempt >= MAX_TRANSACTION_ATTEMPTS) throw error;
      }
    }
  }

  /** True when reads may go to replicas (the option names at least one). */
  get hasReplicas(): boolean {
    return (this.settings.replicaPoolConfigs?.length ?? 0) + (this.settings.replicaPools?.length ?? 0) > 0;
  }

  /**
   * A read that may be answered up to `maxReplicaLagMs` behind the primary
   * (the query APIs): on a usable replica when there is one, else on the
   * primary. A replica that fails it is skipped until a later check, and
   * the read runs again on the primary.
   */
  async read<R>(statement: string | Statement, values: unknown[] = []): Promise<R[]> {
    const replica = await this.replica();
    if (replica !== undefined) {
      try {
        return (await replica.pool.query<R>(queryConfig(statement, values))).rows;
      } catch (error) {
        if (this.closed) throw poolClosedError('query');
        replica.failed(error);
      }
    }
    return this.query(statement, values, true);
  }

  /** `read` for several statements that must see one snapshot (`begin` names the isolation). */
  async readTransaction<T>(body: (tx: Transaction) => Promise<T>, begin: string): Promise<T> {
    const replica = await this.replica();
    if (replica !== undefined) {
      try {
        return await this.transactionOn(replica.pool, body, begin, false);
      } catch (error) {
        if (this.closed) throw poolClosedError('transaction');
        replica.failed(error);
      }
    }
    return this.transaction(body, begin);
  }

  /** Where reads that may lag go now; undefined: the primary. Opens the replica pools on first use. */
  private async replica(): Promise<Replica | undefined> {
    if (!this.hasReplicas) return undefined;
    // The primary first: its schema is what the replicas replay.
    await this.ready();
    return (await this.replicaSet()).pick();
  }

  private replicaSet(): Promise<ReplicaSet> {
    if (this.closed) return Promise.reject(poolClosedError('connect'));
    this.replicas ??= this.openReplicas();
    return this.replicas;
  }

  private async openReplicas(): Promise<ReplicaSet> {
    const configs = this.settings.replicaPoolConfigs ?? [];
    const pg = configs.length > 0 ? await loadPgDriver() : undefined;
    const replicas = [
      ...configs.map((config) => ({
        name: replicaName(config),
        pool: pg ? new pg.Pool({ ...config }) : undefined,
      })),
      ...(this.settings.replicaPools ?? []).map((pool, i) => ({
        name: `replica ${configs.length + i + 1}`,
        pool,
      })),
    ].filter((replica): replica is { name: string; pool: PostgresPool } => replica.pool !== undefined);
    for (const { pool } of replicas) this.detachReplicas.push(hearPoolErrors(pool));
    return new ReplicaSet(replicas, this.settings.maxReplicaLagMs ?? DEFAULT_MAX_REPLICA_LAG_MS, async () => {
      const [row] = await this.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn', [], true);
      return row?.lsn ?? '0/0';
    });
  }

  /** What health and metrics report of the replicas (undefined without any); starts a check when one is due. */
  async replicaStatus(): Promise<PostgresReplicaStatus[] | undefined> {
    if (!this.hasReplicas) return undefined;
    return (await this.replicaSet()).status();
  }

  /**
   * Checks out one client for `body` and always gives it back: destroyed
   * (released with the error) when anything failed, since a connection in an
   * unknown transaction state must never be reused.
   */
  private async withClient<T>(
    pool: PostgresPool,
    body: (tx: Transaction, client: PostgresPoolClient) => Promise<T>,
  ): Promise<T> {
    const client: PostgresPoolClient = await pool.connect();
    let lostConnection: Error | undefined;
    // A checked-out client has no listener of pg-pool's: without this one a
    // connection dropped between two statements would crash the process.
    const onError = (error: Error) => {
      lostConnection = error;
    };
    client.on('error', onError);
    const tx: Transaction = {
      query: async <R>(statement: string | Statement, values: unknown[] = []) => {
        if (lostConnection) throw lostConnection;
        return (await client.query<R>(queryConfig(statement, values))).rows;
      },
    };
    try {
      const result = await body(tx, client);
      client.removeListener('error', onError);
      client.release(lostConnection);
      return result;
    } catch (error) {
      client.removeListener('error', onError);
      client.release(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }

  /** Round-trip latency of a trivial statement, without requiring migrations. */
  async ping(): Promise<number> {
    const pool = await this.openPool();
    const started = performance.now();
    await pool.query({ text: 'SELECT 1', values: [], types: EXACT_TYPES });
    return performance.now() - started;
  }

  /** Ends the pool if the store opened it; an injected pool is only detached from. */
  async close(): Promise<void> {
    this.closed = true;
    const opening = this.opening;
    if (opening) await opening.catch(() => undefined);
    const replicas = await this.replicas?.catch(() => undefined);
    if (replicas !== undefined) {
      const owned = this.settings.replicaPoolConfigs?.length ?? 0;
      await Promise.allSettled(
        replicas
          .pools()
          .slice(0, owned)
          .map((pool) => pool.end()),
      );
      for (const detach of this.detachReplicas.slice(owned)) detach();
    }
    const pool = this.pool;
    this.pool = undefined;
    if (!pool) return;
    if (this.ownsPool) {
      // The listeners stay: pg-pool and its clients can still report a
      // disconnect after end(), and nothing else will ever listen.
      await pool.end();
    } else {
      this.detachPool?.();
    }
  }
}

/** host:port/database of a replica, without credentials. */
function replicaName(config: PgPoolConfig): string {
  if (config.connectionString !== undefined) {
    try {
      const url = new URL(config.connectionString);
      return `${url.hostname}:${url.port || 5432}${url.pathname}`;
    } catch {
      return 'replica';
    }
  }
  return `${config.host ?? 'localhost'}:${config.port ?? 5432}/${config.database ?? ''}`;
}

/** What an operation still on its way when the store closed gets (the store, not the caller, ended the pool). */
function poolClosedError(operation: string): StoreClosedError {
  return new StoreClosedError('the store was closed while this operation was running', {
    backend: BACKEND,
    operation,
  });
}
