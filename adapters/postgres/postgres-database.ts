import { createHash } from 'node:crypto';
import { type AnyKodeStoreError, type ErrorContext, StoreClosedError } from '../../src/errors.js';
import {
  loadPgDriver,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryConfig,
  type PostgresTypeParsers,
  quoteIdentifier,
  type ResolvedPostgresSettings,
} from './postgres-config.js';
import {
  classifyPostgresError,
  hearPoolErrors,
  isPostgresConnectionLoss,
  type PostgresBounds,
  wrapPostgresError,
} from './postgres-errors.js';
import { assertSchemaReadable, migrateAgentSchema } from './postgres-schema.js';

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

/**
 * The store's access to PostgreSQL: opens the pool lazily, runs migrations on
 * first use (and again on the next call if they failed, so a store created
 * while the server is down recovers once it is back), and runs statements and
 * transactions with exact type parsing.
 *
 * Connection failures never surface as an `'error'` event nobody listens to
 * (which would crash the process): the pool and every client it makes or
 * hands out get a listener (`hearPoolErrors`), and failures reach callers as
 * rejected promises.
 */
export class PostgresDatabase {
  readonly schema: string;
  /** The bounds in effect, named by `TimeoutError`s. */
  readonly bounds: PostgresBounds;
  private pool: PostgresPool | undefined;
  private readonly ownsPool: boolean;
  private opening: Promise<PostgresPool> | undefined;
  private migrating: Promise<void> | undefined;
  private closed = false;
  private detachPool: (() => void) | undefined;

  constructor(private readonly settings: ResolvedPostgresSettings) {
    this.schema = settings.schema;
    this.bounds = settings.bounds;
    this.ownsPool = settings.pool === undefined;
    if (settings.pool) this.adoptPool(settings.pool);
  }

  /**
   * A fixed statement, prepared by name unless `preparedStatements` is off.
   * The name is derived from the text (which holds the schema), so equal
   * texts share one prepared statement per connection and different texts
   * never collide. Only for the store's fixed statements: each distinct
   * text stays prepared on every pooled connection.
   */
  statement(text: string): Statement {
    const name = this.settings.preparedStatements
      ? `kode_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`
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
      const pg = await loadPgDriver();
      return this.adoptPool(new pg.Pool({ ...this.settings.poolConfig }));
    })().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /**
   * Resolves once the pool exists and the schema is migrated (read-only:
   * checked to be current); retried on the next call after a failure.
   */
  async ready(): Promise<PostgresPool> {
    const pool = await this.openPool();
    if (this.migrating === undefined) {
      const attempt = this.withClient(pool, (tx) =>
        this.settings.readOnly ? assertSchemaReadable(tx, this.schema) : migrateAgentSchema(tx, this.schema),
      );
      this.migrating = attempt;
      attempt.catch(() => {
        if (this.migrating === attempt) this.migrating = undefined;
      });
    }
    await this.migrating;
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
   * Runs `body` in one transaction on one connection. A failure before
   * COMMIT was sent rolls back everything, so when it was the connection
   * that died the whole transaction is retried once on a fresh connection;
   * a failure during COMMIT is reported as is (its outcome is unknown).
   */
  async transaction<T>(body: (tx: Transaction) => Promise<T>): Promise<T> {
    const pool = await this.ready();
    const attempt = async (): Promise<{ value: T } | { retryable: unknown }> => {
      let committing = false;
      try {
        const value = await this.withClient(pool, async (tx) => {
          await tx.query('BEGIN');
          try {
            const result = await body(tx);
            committing = true;
            await tx.query('COMMIT');
            return result;
          } catch (error) {
            if (!committing) await tx.query('ROLLBACK').catch(() => undefined);
            throw error;
          }
        });
        return { value };
      } catch (error) {
        if (this.closed) throw poolClosedError('transaction');
        if (!committing && isConnectionError(error)) return { retryable: error };
        throw error;
      }
    };
    const first = await attempt();
    if ('value' in first) return first.value;
    const second = await attempt();
    if ('value' in second) return second.value;
    throw second.retryable;
  }

  /**
   * Checks out one client for `body` and always gives it back: destroyed
   * (released with the error) when anything failed, since a connection in an
   * unknown transaction state must never be reused.
   */
  private async withClient<T>(pool: PostgresPool, body: (tx: Transaction) => Promise<T>): Promise<T> {
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
      const result = await body(tx);
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

/** What an operation still on its way when the store closed gets (the store, not the caller, ended the pool). */
function poolClosedError(operation: string): StoreClosedError {
  return new StoreClosedError('the store was closed while this operation was running', {
    backend: BACKEND,
    operation,
  });
}
