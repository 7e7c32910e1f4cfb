import type { AnyKodeStoreError, ErrorContext } from '../../src/errors.js';
import type {
  KvBackend,
  KvInstanceRow,
  KvKeyRef,
  KvMutation,
  KvQueryRow,
  KvRecordRow,
} from '../../src/kv/kv-backend.js';
import type { KvQueryPlan } from '../../src/kv/kv-query.js';
import { DEFAULT_SQLITE_BUSY_TIMEOUT_MS } from './sqlite-config.js';
import { SqliteConnection, type SqliteDatabaseSource } from './sqlite-connection.js';
import { classifySqliteError } from './sqlite-errors.js';
import { buildKvQuery, RECORD_COLUMNS } from './sqlite-kv-query.js';
import { SQLITE_KV_MIGRATIONS } from './sqlite-schema.js';

/**
 * The KV backend on SQLite (better-sqlite3), in the agent store's database.
 *
 * - Instance, namespace and key are separate TEXT columns; the primary key
 *   (instance_id, namespace, key) is the index every lookup uses. SQLite's
 *   BINARY collation compares UTF-8 bytes, which is code-point order.
 * - Value and metadata are the JSON text `encodeJson` made, returned byte for
 *   byte; queries read into it (`sqlite-kv-query.ts`).
 * - `kode_kv_namespaces` counts the stored rows of each namespace, kept in
 *   the same transaction as every insert and delete, so record counts and
 *   namespace lists read a counter, minus the expired rows not yet swept
 *   (found through a partial index on `expires_at`), instead of scanning.
 * - Statements, transactions, busy retries and the schema go through a
 *   `SqliteConnection`: the store's own (`SqliteStore.kv`), so KV writes
 *   queue and commit with the agent store's, or one over a database the
 *   caller opened. Writes run in `BEGIN IMMEDIATE`: the write lock is taken
 *   before the rows are read, so a read-modify-write (merge, increment,
 *   compare-and-set) cannot interleave with another connection's.
 */

/** The database, or a function that returns it once the owning store has opened it. */
export type SqliteKvDatabaseSource = SqliteDatabaseSource;

/** Options of `new SqliteKvBackend(db, options)`. */
export interface SqliteKvOptions {
  /** How long a write waits for another connection's lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Check the KV schema instead of creating or upgrading it (the database is open read-only). */
  readOnly?: boolean;
}

const INSTANCE_COLUMNS = 'id, name, description, created_at AS createdAt, updated_at AS updatedAt';

const LIVE = '(r.expires_at IS NULL OR r.expires_at > ?)';

const SQL = {
  insertInstance: `INSERT INTO kode_kv_instances (id, name, description, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
  getInstance: `SELECT ${INSTANCE_COLUMNS} FROM kode_kv_instances WHERE id = ?`,
  instanceExists: 'SELECT 1 AS present FROM kode_kv_instances WHERE id = ?',
  listInstances: `SELECT ${INSTANCE_COLUMNS} FROM kode_kv_instances ORDER BY created_at, id`,
  updateInstance: `UPDATE kode_kv_instances SET name = COALESCE(?, name), description = COALESCE(?, description),
    updated_at = MAX(?, updated_at + 1) WHERE id = ?`,
  deleteInstanceRecords: 'DELETE FROM kode_kv_records WHERE instance_id = ?',
  deleteInstanceCounters: 'DELETE FROM kode_kv_namespaces WHERE instance_id = ?',
  deleteInstance: 'DELETE FROM kode_kv_instances WHERE id = ?',
  getRecord: `SELECT ${RECORD_COLUMNS}, r.value AS value, r.metadata AS metadata FROM kode_kv_records r
    WHERE r.instance_id = ? AND r.namespace = ? AND r.key = ?`,
  upsertRecord: `INSERT INTO kode_kv_records (instance_id, namespace, key, id, value, metadata, version,
      created_at, updated_at, expires_at, created_by, updated_by)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (instance_id, namespace, key) DO UPDATE SET id = excluded.id, value = excluded.value,
      metadata = excluded.metadata, version = excluded.version, created_at = excluded.created_at,
      updated_at = excluded.updated_at, expires_at = excluded.expires_at, created_by = excluded.created_by,
      updated_by = excluded.updated_by`,
  deleteRecord: 'DELETE FROM kode_kv_records WHERE instance_id = ? AND namespace = ? AND key = ?',
  addToCounter: `INSERT INTO kode_kv_namespaces (instance_id, namespace, record_count) VALUES (?, ?, ?)
    ON CONFLICT (instance_id, namespace) DO UPDATE SET record_count = record_count + excluded.record_count`,
  dropEmptyCounter:
    'DELETE FROM kode_kv_namespaces WHERE instance_id = ? AND namespace = ? AND record_count <= 0',
  countLiveInNamespace: `SELECT count(*) AS n FROM kode_kv_records r
    WHERE r.instance_id = ? AND r.namespace = ? AND ${LIVE}`,
  deleteNamespace: 'DELETE FROM kode_kv_records WHERE instance_id = ? AND namespace = ?',
  deleteCounter: 'DELETE FROM kode_kv_namespaces WHERE instance_id = ? AND namespace = ?',
  // A counter read minus the expired rows still stored: the partial index
  // on expires_at holds only rows with a TTL, so this never reads the rest.
  countNamespace: `SELECT COALESCE((SELECT record_count FROM kode_kv_namespaces
      WHERE instance_id = ? AND namespace = ?), 0)
    - (SELECT count(*) FROM kode_kv_records WHERE instance_id = ? AND namespace = ? AND expires_at <= ?) AS n`,
  countInstance: `SELECT COALESCE((SELECT sum(record_count) FROM kode_kv_namespaces WHERE instance_id = ?), 0)
    - (SELECT count(*) FROM kode_kv_records WHERE instance_id = ? AND expires_at <= ?) AS n`,
  namespaces: `SELECT n.namespace AS namespace FROM kode_kv_namespaces n
    WHERE n.instance_id = ? AND n.record_count > (SELECT count(*) FROM kode_kv_records r
      WHERE r.instance_id = n.instance_id AND r.namespace = n.namespace AND r.expires_at <= ?)
    ORDER BY n.namespace`,
  expiredByNamespace: `SELECT instance_id AS instanceId, namespace, count(*) AS n FROM kode_kv_records
    WHERE expires_at <= ? GROUP BY instance_id, namespace`,
  sweep: 'DELETE FROM kode_kv_records WHERE expires_at <= ?',
} as const;

/**
 * KV storage in a better-sqlite3 database, usually the agent store's own.
 *
 * ```ts
 * const kv = createKvStore(new SqliteKvBackend(db));
 * ```
 */
export class SqliteKvBackend implements KvBackend {
  readonly name = 'sqlite';
  private readonly connection: SqliteConnection;

  /**
   * @param source a better-sqlite3 database (or a function returning it) the
   *   caller opened and closes, or the owning store's connection.
   */
  constructor(source: SqliteKvDatabaseSource | SqliteConnection, options: SqliteKvOptions = {}) {
    this.connection =
      source instanceof SqliteConnection
        ? source
        : SqliteConnection.over(source, {
            busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
            readOnly: options.readOnly ?? false,
          });
  }

  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return classifySqliteError(error, ctx);
  }

  open(): Promise<void> {
    return this.connection.ensureSchema('kv', SQLITE_KV_MIGRATIONS);
  }

  // -- plumbing -------------------------------------------------------------

  private statement(sql: string) {
    return this.connection.statement(sql);
  }

  /** A write transaction, queued after the connection's earlier writes. */
  private write<T>(body: () => T): Promise<T> {
    return this.connection.write(body);
  }

  /** Several reads that must see one state. */
  private read<T>(body: () => T): Promise<T> {
    return this.connection.read(body, { snapshot: true });
  }

  private instanceExists(id: string): boolean {
    return this.statement(SQL.instanceExists).get(id) !== undefined;
  }

  private adjustCounter(instanceId: string, namespace: string, delta: number): void {
    if (delta === 0) return;
    this.statement(SQL.addToCounter).run(instanceId, namespace, delta);
    if (delta < 0) this.statement(SQL.dropEmptyCounter).run(instanceId, namespace);
  }

  // -- instances ------------------------------------------------------------

  insertInstance(row: KvInstanceRow): Promise<boolean> {
    return this.write(
      () =>
        this.statement(SQL.insertInstance).run(
          row.id,
          row.name,
          row.description,
          row.createdAt,
          row.updatedAt,
        ).changes === 1,
    );
  }

  getInstance(id: string): Promise<KvInstanceRow | undefined> {
    return this.connection.read(() => this.statement(SQL.getInstance).get(id) as KvInstanceRow | undefined);
  }

  listInstances(): Promise<KvInstanceRow[]> {
    return this.connection.read(() => this.statement(SQL.listInstances).all() as KvInstanceRow[]);
  }

  updateInstance(
    id: string,
    changes: { name?: string; description?: string },
    now: number,
  ): Promise<KvInstanceRow | undefined> {
    return this.write(() => {
      this.statement(SQL.updateInstance).run(changes.name ?? null, changes.description ?? null, now, id);
      return this.statement(SQL.getInstance).get(id) as KvInstanceRow | undefined;
    });
  }

  deleteInstance(id: string): Promise<boolean> {
    return this.write(() => {
      this.statement(SQL.deleteInstanceRecords).run(id);
      this.statement(SQL.deleteInstanceCounters).run(id);
      return this.statement(SQL.deleteInstance).run(id).changes === 1;
    });
  }

  // -- records --------------------------------------------------------------

  getRecords(
    instanceId: string,
    refs: KvKeyRef[],
    now: number,
  ): Promise<Array<KvRecordRow | undefined> | undefined> {
    return this.read(() => {
      if (!this.instanceExists(instanceId)) return undefined;
      return refs.map((ref) => {
        const row = this.statement(SQL.getRecord).get(instanceId, ref.namespace, ref.key) as
          | KvRecordRow
          | undefined;
        return row && (row.expiresAt === null || row.expiresAt > now) ? row : undefined;
      });
    });
  }

  mutate(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ): Promise<boolean> {
    return this.write(() => {
      const created = options.createInstance;
      if (created) {
        this.statement(SQL.insertInstance).run(
          created.id,
          created.name,
          created.description,
          created.createdAt,
          created.updatedAt,
        );
      }
      if (!this.instanceExists(instanceId)) return false;
      const current = refs.map(
        (ref) =>
          this.statement(SQL.getRecord).get(instanceId, ref.namespace, ref.key) as KvRecordRow | undefined,
      );
      const stored = new Set(
        current.flatMap((row) => (row ? [JSON.stringify([row.namespace, row.key])] : [])),
      );
      const plan = mutation(current);
      const deltas = new Map<string, number>();
      const count = (namespace: string, delta: number) =>
        deltas.set(namespace, (deltas.get(namespace) ?? 0) + delta);
      for (const ref of plan.remove) {
        const removed = this.statement(SQL.deleteRecord).run(instanceId, ref.namespace, ref.key).changes;
        if (removed > 0) count(ref.namespace, -removed);
      }
      for (const row of plan.put) {
        const identity = JSON.stringify([row.namespace, row.key]);
        if (!stored.has(identity)) {
          count(row.namespace, 1);
          stored.add(identity);
        }
        this.statement(SQL.upsertRecord).run(
          instanceId,
          row.namespace,
          row.key,
          row.id,
          row.value,
          row.metadata,
          row.version,
          row.createdAt,
          row.updatedAt,
          row.expiresAt,
          row.createdBy,
          row.updatedBy,
        );
      }
      for (const [namespace, delta] of deltas) this.adjustCounter(instanceId, namespace, delta);
      return true;
    });
  }

  deleteNamespace(instanceId: string, namespace: string, now: number): Promise<number | undefined> {
    return this.write(() => {
      if (!this.instanceExists(instanceId)) return undefined;
      const live = (this.statement(SQL.countLiveInNamespace).get(instanceId, namespace, now) as { n: number })
        .n;
      this.statement(SQL.deleteNamespace).run(instanceId, namespace);
      this.statement(SQL.deleteCounter).run(instanceId, namespace);
      return live;
    });
  }

  namespaces(instanceId: string, now: number): Promise<string[] | undefined> {
    return this.read(() => {
      if (!this.instanceExists(instanceId)) return undefined;
      return (this.statement(SQL.namespaces).all(instanceId, now) as Array<{ namespace: string }>).map(
        (row) => row.namespace,
      );
    });
  }

  countRecords(instanceId: string, namespace: string | undefined, now: number): Promise<number | undefined> {
    return this.read(() => {
      if (!this.instanceExists(instanceId)) return undefined;
      const row =
        namespace === undefined
          ? this.statement(SQL.countInstance).get(instanceId, instanceId, now)
          : this.statement(SQL.countNamespace).get(instanceId, namespace, instanceId, namespace, now);
      return (row as { n: number }).n;
    });
  }

  query(plan: KvQueryPlan, now: number): Promise<{ rows: KvQueryRow[]; total: number } | undefined> {
    const { page, total, parameters } = buildKvQuery(plan, now);
    return this.read(() => {
      if (!this.instanceExists(plan.instanceId)) return undefined;
      return {
        rows: this.connection.prepareOnce(page).all(parameters) as KvQueryRow[],
        total: (this.connection.prepareOnce(total).get(parameters) as { n: number }).n,
      };
    });
  }

  sweepExpired(now: number): Promise<number> {
    return this.write(() => {
      const expired = this.statement(SQL.expiredByNamespace).all(now) as Array<{
        instanceId: string;
        namespace: string;
        n: number;
      }>;
      const removed = this.statement(SQL.sweep).run(now).changes;
      for (const group of expired) this.adjustCounter(group.instanceId, group.namespace, -group.n);
      return removed;
    });
  }
}
