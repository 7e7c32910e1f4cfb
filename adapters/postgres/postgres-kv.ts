import { type AnyKodeStoreError, ConfigError, type ErrorContext } from '../../src/errors.js';
import type {
  KvBackend,
  KvInstanceRow,
  KvKeyRef,
  KvMutation,
  KvQueryRow,
  KvRecordRow,
} from '../../src/kv/kv-backend.js';
import type { KvQueryPlan } from '../../src/kv/kv-query.js';
import { injectedPoolBounds, type PostgresPool, validateSchema } from './postgres-config.js';
import {
  PostgresConnection,
  type PostgresPoolSource,
  RetryTransaction,
  type Statement,
} from './postgres-connection.js';
import type { PostgresBounds } from './postgres-errors.js';
import { isJsonbReadable, queryKvRecords } from './postgres-kv-query.js';
import { buildKvStatements } from './postgres-kv-statements.js';
import type { PostgresReplicaStatus } from './postgres-replicas.js';
import { KV_SCHEMA } from './postgres-schema.js';

export { isJsonbReadable } from './postgres-kv-query.js';
export { POSTGRES_KV_SCHEMA_VERSION } from './postgres-schema.js';

/**
 * The KV backend on PostgreSQL (pg), in the agent store's schema.
 *
 * Storage choices, and why:
 * - Value and metadata are `text` holding `encodeJson` output, returned byte
 *   for byte. `jsonb` would reorder object keys, and it cannot hold `\u0000`
 *   or a lone surrogate at all, which are legal in JSON strings.
 * - Queries read the text as `jsonb`, cast per row (postgres-kv-query.ts);
 *   `jsonb_ok` says whether jsonb can, decided when a row is written.
 * - Metadata merges, increments and conditional writes are read-modify-write
 *   under `SELECT ... FOR UPDATE` in one transaction: the row lock excludes
 *   every other writer of that key until commit, so two writers merging
 *   different metadata keys both survive, and the merge keeps the stored key
 *   order (a jsonb `||` would not). A key that does not exist yet has no row
 *   to lock: its insert uses `ON CONFLICT DO NOTHING`, and a writer that lost
 *   that race retries the whole transaction, then finding the row to lock.
 * - Instance, namespace and key are `text COLLATE "C"` columns (byte order of
 *   UTF-8 = code-point order) with the primary key (instance_id, namespace,
 *   key). `kode_kv_namespaces` counts stored rows per namespace, changed by
 *   deltas in the same transaction as the rows, so counts and namespace lists
 *   read a counter minus the expired rows not yet swept (a partial index).
 * - Every value, JSON path segment and cursor position is a bound parameter;
 *   only the schema name (quoted) and fixed fragments are in the SQL text.
 * - Statements, transactions (and their retries) and migrations go through
 *   the adapter's one connection layer, `PostgresConnection`: in a store, the
 *   store's own; on its own, one over the pool it is given.
 */

/** The pool, or a function returning it once the owning store has opened it. */
export type PostgresKvPoolSource = PostgresPoolSource;

/** Options of `new PostgresKvBackend(pool, options)`. */
export interface PostgresKvOptions {
  /** Schema of the tables (default `public`); created if missing. */
  schema?: string;
  /**
   * Run the fixed statements as named prepared statements, parsed and planned
   * once per connection (default true). Set `false` behind a connection
   * pooler in transaction mode that does not support them (PgBouncer < 1.21).
   */
  preparedStatements?: boolean;
  /** Check the KV schema instead of creating or upgrading it (the store is read-only). */
  readOnly?: boolean;
  /** @internal The owning store's bounds, named by its `TimeoutError`s. */
  bounds?: PostgresBounds;
  /**
   * Pools of hot standbys of the primary (used, never ended): `query` and
   * `getRecordCount` may read there, within `maxReplicaLagMs` (default
   * 5 000 ms) of the primary; see `PostgresStoreOptions.replicas`.
   */
  replicas?: PostgresPool[];
  /** How stale a replica's answers may be (ms). */
  maxReplicaLagMs?: number;
}

function replicaPools(replicas: unknown): PostgresPool[] | undefined {
  if (replicas === undefined) return undefined;
  const pools = Array.isArray(replicas) ? (replicas as Array<Partial<PostgresPool> | null>) : undefined;
  if (!pools?.every((pool) => typeof pool?.connect === 'function' && typeof pool.query === 'function')) {
    throw new ConfigError('replicas must be an array of pg.Pool objects', {
      backend: 'postgres',
      variable: 'replicas',
    });
  }
  return pools as PostgresPool[];
}

function replicaLag(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError('maxReplicaLagMs must be a whole number of milliseconds >= 1', {
      backend: 'postgres',
      variable: 'maxReplicaLagMs',
    });
  }
  return value;
}

/**
 * KV storage in a PostgreSQL schema, usually the agent store's own.
 *
 * ```ts
 * const kv = createKvStore(new PostgresKvBackend(pool, { schema: 'public' }));
 * ```
 */
export class PostgresKvBackend implements KvBackend {
  readonly name = 'postgres';
  readonly schema: string;
  private readonly db: PostgresConnection;
  private readonly sql: ReturnType<typeof buildKvStatements>;

  /**
   * @param source the pool (used, never ended), a function returning it, or
   *   (inside the package) the connection layer of the store it belongs to.
   */
  constructor(source: PostgresKvPoolSource | PostgresConnection, options: PostgresKvOptions = {}) {
    if (source instanceof PostgresConnection) {
      this.db = source;
    } else {
      if (options.preparedStatements !== undefined && typeof options.preparedStatements !== 'boolean') {
        throw new ConfigError('preparedStatements must be true or false', {
          backend: 'postgres',
          variable: 'preparedStatements',
        });
      }
      this.db = new PostgresConnection({
        schema: validateSchema(options.schema),
        preparedStatements: options.preparedStatements ?? true,
        readOnly: options.readOnly ?? false,
        // A pool handed in keeps its own settings; they are only read, to name them in errors.
        bounds: options.bounds ?? injectedPoolBounds(typeof source === 'function' ? undefined : source),
        pool: source,
        replicaPools: replicaPools(options.replicas),
        maxReplicaLagMs: replicaLag(options.maxReplicaLagMs),
      });
    }
    this.schema = this.db.schema;
    this.sql = buildKvStatements(this.db);
  }

  /** pg's errors read as the agent store reads them: a lost connection is a `ConnectionError` on every path. */
  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return this.db.classifyError(error, ctx);
  }

  /** The replicas' state (undefined without any), as `PostgresStore.healthCheck()` reports it. */
  replicaStatus(): Promise<PostgresReplicaStatus[] | undefined> {
    return this.db.replicaStatus();
  }

  /** Migrates the KV tables (read-only: checks them), through the connection layer's one migration runner. */
  async open(): Promise<void> {
    await this.db.ready();
    await this.db.install(KV_SCHEMA);
  }

  /** A statement that only reads: run once more on a fresh connection if the connection died under it. */
  private read<R>(statement: Statement, values: unknown[] = []): Promise<R[]> {
    return this.db.query<R>(statement, values, true);
  }

  /** A write, run once: a retry after an unknown outcome could answer wrongly (an id "taken" by itself). */
  private write<R>(statement: Statement, values: unknown[] = []): Promise<R[]> {
    return this.db.query<R>(statement, values);
  }

  private async instanceExists(id: string): Promise<boolean> {
    return (await this.read(this.sql.instanceExists, [id])).length > 0;
  }

  // -- instances ------------------------------------------------------------

  async insertInstance(row: KvInstanceRow): Promise<boolean> {
    const rows = await this.write(this.sql.insertInstance, [
      row.id,
      row.name,
      row.description,
      row.createdAt,
      row.updatedAt,
    ]);
    return rows.length === 1;
  }

  async getInstance(id: string): Promise<KvInstanceRow | undefined> {
    return (await this.read<KvInstanceRow>(this.sql.getInstance, [id]))[0];
  }

  listInstances(): Promise<KvInstanceRow[]> {
    return this.read<KvInstanceRow>(this.sql.listInstances);
  }

  async updateInstance(
    id: string,
    changes: { name?: string; description?: string },
    now: number,
  ): Promise<KvInstanceRow | undefined> {
    const rows = await this.write<KvInstanceRow>(this.sql.updateInstance, [
      id,
      changes.name ?? null,
      changes.description ?? null,
      now,
    ]);
    return rows[0];
  }

  async deleteInstance(id: string): Promise<boolean> {
    // Records and counters go with it (ON DELETE CASCADE), in the same statement.
    return (await this.write(this.sql.deleteInstance, [id])).length === 1;
  }

  // -- records --------------------------------------------------------------

  async getRecords(
    instanceId: string,
    refs: KvKeyRef[],
    now: number,
  ): Promise<Array<KvRecordRow | undefined> | undefined> {
    const rows = await this.read<KvRecordRow>(this.sql.getLiveRecords, [
      instanceId,
      refs.map((ref) => ref.namespace),
      refs.map((ref) => ref.key),
      now,
    ]);
    // A record cannot outlive its instance (foreign key), so rows prove the instance exists.
    if (rows.length === 0 && !(await this.instanceExists(instanceId))) return undefined;
    const found = new Map(rows.map((row) => [JSON.stringify([row.namespace, row.key]), row]));
    return refs.map((ref) => found.get(JSON.stringify([ref.namespace, ref.key])));
  }

  mutate(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const query = <R>(statement: Statement, values: unknown[]) => tx.query<R>(statement, values);
      const stored = await query<KvRecordRow>(this.sql.lockRecords, [
        instanceId,
        refs.map((ref) => ref.namespace),
        refs.map((ref) => ref.key),
      ]);
      // Locked rows prove the instance exists (foreign key) and hold off a
      // cascading delete until commit. Without them, lock the instance row
      // itself (KEY SHARE: a concurrent deleteInstance waits for us), creating
      // it first when asked to.
      if (stored.length < refs.length || refs.length === 0) {
        let present = (await query(this.sql.lockInstance, [instanceId])).length > 0;
        const created = options.createInstance;
        if (!present && created) {
          await query(this.sql.insertInstance, [
            created.id,
            created.name,
            created.description,
            created.createdAt,
            created.updatedAt,
          ]);
          present = (await query(this.sql.lockInstance, [instanceId])).length > 0;
        }
        if (!present) return false;
      }
      const byKey = new Map(stored.map((row) => [JSON.stringify([row.namespace, row.key]), row]));
      const plan = mutation(refs.map((ref) => byKey.get(JSON.stringify([ref.namespace, ref.key]))));

      if (plan.remove.length > 0) {
        const counters = await query<{ namespace: string; recordCount: number }>(this.sql.deleteRecords, [
          instanceId,
          plan.remove.map((ref) => ref.namespace),
          plan.remove.map((ref) => ref.key),
        ]);
        for (const { namespace, recordCount } of counters) {
          if (recordCount <= 0) await query(this.sql.dropEmptyCounter, [instanceId, namespace]);
        }
      }
      const inserts: KvRecordRow[] = [];
      for (const row of plan.put) {
        if (!byKey.has(JSON.stringify([row.namespace, row.key]))) {
          inserts.push(row);
          continue;
        }
        await query(this.sql.updateRecord, [
          instanceId,
          row.namespace,
          row.key,
          row.id,
          row.value,
          row.metadata,
          isJsonbReadable(row.value) && isJsonbReadable(row.metadata),
          row.version,
          row.createdAt,
          row.updatedAt,
          row.expiresAt,
          row.createdBy,
          row.updatedBy,
        ]);
      }
      if (inserts.length > 0) {
        // Rows in key order, like the locks: concurrent multi-key inserts wait rather than deadlock.
        inserts.sort((a, b) =>
          a.namespace === b.namespace ? (a.key < b.key ? -1 : 1) : a.namespace < b.namespace ? -1 : 1,
        );
        const column = <K extends keyof KvRecordRow>(name: K) => inserts.map((row) => row[name]);
        const [inserted] = await query<{ n: number }>(this.sql.insertRecords, [
          instanceId,
          column('namespace'),
          column('key'),
          column('id'),
          column('value'),
          column('metadata'),
          inserts.map((row) => isJsonbReadable(row.value) && isJsonbReadable(row.metadata)),
          column('version'),
          column('createdAt'),
          column('updatedAt'),
          column('expiresAt'),
          column('createdBy'),
          column('updatedBy'),
        ]);
        // Another transaction inserted one of these keys after our read: decide again on its row.
        if (Number(inserted?.n ?? 0) < inserts.length) throw new RetryTransaction();
      }
      return true;
    });
  }

  deleteNamespace(instanceId: string, namespace: string, now: number): Promise<number | undefined> {
    return this.db.transaction(async (tx) => {
      const run = <R>(statement: Statement, values: unknown[]) => tx.query<R>(statement, values);
      const [result] = await run<{ present: boolean; live: number }>(this.sql.deleteNamespace, [
        instanceId,
        namespace,
        now,
      ]);
      await run(this.sql.dropEmptyCounter, [instanceId, namespace]);
      return result?.present ? Number(result.live) : undefined;
    });
  }

  async namespaces(instanceId: string, now: number): Promise<string[] | undefined> {
    const rows = await this.read<{ namespace: string }>(this.sql.namespaces, [instanceId, now]);
    if (rows.length === 0 && !(await this.instanceExists(instanceId))) return undefined;
    return rows.map((row) => row.namespace);
  }

  async countRecords(
    instanceId: string,
    namespace: string | undefined,
    now: number,
  ): Promise<number | undefined> {
    const [row] =
      namespace === undefined
        ? await this.db.read<{ present: boolean; n: number }>(this.sql.countInstance, [instanceId, now])
        : await this.db.read<{ present: boolean; n: number }>(this.sql.countNamespace, [
            instanceId,
            namespace,
            now,
          ]);
    return row?.present ? Number(row.n) : undefined;
  }

  query(plan: KvQueryPlan, now: number): Promise<{ rows: KvQueryRow[]; total: number } | undefined> {
    return queryKvRecords(this.db, this.sql, plan, now);
  }

  async sweepExpired(now: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      const run = <R>(statement: Statement, values: unknown[]) => tx.query<R>(statement, values);
      const groups = await run<{ instanceId: string; namespace: string; n: number }>(this.sql.sweep, [now]);
      if (groups.length > 0) {
        await run(this.sql.dropEmptyCounters, [
          groups.map((g) => g.instanceId),
          groups.map((g) => g.namespace),
        ]);
      }
      return groups.reduce((sum, group) => sum + Number(group.n), 0);
    });
  }
}
