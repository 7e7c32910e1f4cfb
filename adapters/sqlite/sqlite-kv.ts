import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AnyKodeStoreError, ErrorContext } from '../../src/errors.js';
import type {
  KvBackend,
  KvInstanceRow,
  KvKeyRef,
  KvMutation,
  KvQueryRow,
  KvRecordRow,
} from '../../src/kv/kv-backend.js';
import type { KvFieldRef, KvPredicate, KvQueryPlan, KvScalar, KvSortKey } from '../../src/kv/kv-query.js';
import { vectorDirections } from '../../src/kv/kv-query.js';
import { prefixUpperBound } from '../../src/strings.js';
import type { SqliteDatabase, SqliteStatement } from './sqlite-config.js';
import { damagedDatabaseError, isBusyError } from './sqlite-connection.js';
import { classifySqliteError } from './sqlite-errors.js';
import { readableJson } from './sqlite-json.js';
import { assertSchemaReadable, migrateSchema, type SqliteMigration } from './sqlite-schema.js';

/**
 * The KV backend on SQLite (better-sqlite3), in the agent store's database.
 *
 * - Instance, namespace and key are separate TEXT columns; the primary key
 *   (instance_id, namespace, key) is the index every lookup uses. SQLite's
 *   BINARY collation compares UTF-8 bytes, which is code-point order.
 * - Value and metadata are the JSON text `encodeJson` made, returned byte for
 *   byte; queries read into it with `json_type` / `json_extract` and a JSON
 *   path that is a bound parameter (every segment JSON-quoted, so `"`, `.`,
 *   `\`, NUL and emoji in member names need no escaping rules of ours).
 * - `kode_kv_namespaces` counts the stored rows of each namespace, kept in
 *   the same transaction as every insert and delete, so record counts and
 *   namespace lists read a counter, minus the expired rows not yet swept
 *   (found through a partial index on `expires_at`), instead of scanning.
 * - Writes run in `BEGIN IMMEDIATE`: the write lock is taken before the
 *   rows are read, so a read-modify-write (merge, increment, compare-and-set)
 *   cannot interleave with another connection's. better-sqlite3 is
 *   synchronous, so a busy database is retried with timers rather than
 *   SQLite's blocking busy handler, and the event loop never stalls.
 */

/** The database, or a function that returns it once the owning store has opened it. */
export type SqliteKvDatabaseSource = SqliteDatabase | (() => SqliteDatabase | Promise<SqliteDatabase>);

/** Options of `new SqliteKvBackend(db, options)`. */
export interface SqliteKvOptions {
  /** How long a write waits for another connection's lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Check the KV schema instead of creating or upgrading it (the database is open read-only). */
  readOnly?: boolean;
}

/** The KV component's schema history in `kode_schema_version`. */
export const SQLITE_KV_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    description: 'KV instances, records and namespace counters',
    sql: `
      CREATE TABLE kode_kv_instances (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX kode_kv_instances_by_created ON kode_kv_instances (created_at, id);
      CREATE TABLE kode_kv_records (
        instance_id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        id TEXT NOT NULL,
        value TEXT NOT NULL,
        metadata TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER,
        created_by TEXT,
        updated_by TEXT,
        PRIMARY KEY (instance_id, namespace, key)
      );
      CREATE INDEX kode_kv_records_expiring ON kode_kv_records (instance_id, namespace, expires_at)
        WHERE expires_at IS NOT NULL;
      CREATE INDEX kode_kv_records_by_expiry ON kode_kv_records (expires_at) WHERE expires_at IS NOT NULL;
      CREATE TABLE kode_kv_namespaces (
        instance_id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        record_count INTEGER NOT NULL,
        PRIMARY KEY (instance_id, namespace)
      ) WITHOUT ROWID;
    `,
  },
];

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
const MAX_RETRY_DELAY_MS = 50;

const RECORD_COLUMNS = `r.instance_id AS instanceId, r.namespace AS namespace, r.key AS key, r.id AS id,
  r.version AS version, r.created_at AS createdAt, r.updated_at AS updatedAt, r.expires_at AS expiresAt,
  r.created_by AS createdBy, r.updated_by AS updatedBy`;

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
 * Collects bound parameters while a statement is built. Parameters are named
 * (`@p1`, `@p2`, ...), so an expression may appear twice in the text (a range
 * test, a cursor condition) and still bind its values once, in any order.
 */
class Parameters {
  readonly values: Record<string, unknown> = {};
  private next = 1;
  add(value: unknown): string {
    const name = `p${this.next++}`;
    this.values[name] = value;
    return `@${name}`;
  }
}

/** A JSON path for SQLite's JSON functions: each member name JSON-quoted, so any character is literal. */
function jsonPath(path: string[]): string {
  return `$${path.map((segment) => `.${JSON.stringify(segment)}`).join('')}`;
}

const COLUMN_SQL = {
  key: 'r.key',
  namespace: 'r.namespace',
  version: 'r.version',
  createdAt: 'r.created_at',
  updatedAt: 'r.updated_at',
} as const;

const NUMBER_TYPES = "('integer', 'real')";

/** SQL for one JSON field: its type (NULL when missing), its SQL value, its document and bound path. */
function jsonField(field: Extract<KvFieldRef, { kind: 'json' }>, params: Parameters) {
  const document = readableJson(field.document === 'value' ? 'r.value' : 'r.metadata');
  const path = jsonPath(field.path);
  return {
    type: () => `json_type(${document}, ${params.add(path)})`,
    value: () => `json_extract(${document}, ${params.add(path)})`,
    each: () => `json_each(${document}, ${params.add(path)})`,
  };
}

/** The test "same type and value as `operand`" for a JSON field whose type is known to be present. */
function jsonEquals(field: ReturnType<typeof jsonField>, operand: KvScalar, params: Parameters): string {
  if (operand === null) return `${field.type()} = 'null'`;
  if (operand === true) return `${field.type()} = 'true'`;
  if (operand === false) return `${field.type()} = 'false'`;
  if (typeof operand === 'number') {
    return `(${field.type()} IN ${NUMBER_TYPES} AND ${field.value()} = ${params.add(operand)})`;
  }
  return `(${field.type()} = 'text' AND ${field.value()} = ${params.add(operand)})`;
}

function elementEquals(operand: KvScalar, params: Parameters): string {
  if (operand === null) return "e.type = 'null'";
  if (typeof operand === 'boolean') return `e.type = '${operand}'`;
  if (typeof operand === 'number') return `(e.type IN ${NUMBER_TYPES} AND e.value = ${params.add(operand)})`;
  return `(e.type = 'text' AND e.value = ${params.add(operand)})`;
}

/** `text` starts with `prefix`, as an index-friendly range in code-point order. */
function startsWith(text: string, prefix: string, params: Parameters): string {
  const upper = prefixUpperBound(prefix);
  const low = `${text} >= ${params.add(prefix)}`;
  return upper === undefined ? low : `(${low} AND ${text} < ${params.add(upper)})`;
}

/** `text` ends with `suffix`, compared as UTF-8 bytes (`length()` would stop at a NUL inside the text). */
function endsWith(text: string, suffix: string, params: Parameters): string {
  const bytes = Buffer.from(suffix, 'utf8');
  if (bytes.length === 0) return '1';
  return `substr(CAST(${text} AS BLOB), -${params.add(bytes.length)}) = ${params.add(bytes)}`;
}

const ORDERING: Record<string, string> = { gt: '>', gte: '>=', lt: '<', lte: '<=' };

function compileJsonCompare(
  predicate: Extract<KvPredicate, { kind: 'compare' }>,
  field: ReturnType<typeof jsonField>,
  params: Parameters,
): string {
  const { operator, operand } = predicate;
  switch (operator) {
    case 'eq':
      return jsonEquals(field, operand, params);
    case 'neq':
      return `(${field.type()} IS NOT NULL AND NOT ${jsonEquals(field, operand, params)})`;
    case 'contains': {
      const inArray = `(${field.type()} = 'array' AND EXISTS (SELECT 1 FROM ${field.each()} e WHERE ${elementEquals(operand, params)}))`;
      if (typeof operand !== 'string') return inArray;
      const inText = `(${field.type()} = 'text' AND instr(${field.value()}, ${params.add(operand)}) > 0)`;
      return `(${inText} OR ${inArray})`;
    }
    case 'startsWith':
      return `(${field.type()} = 'text' AND ${startsWith(field.value(), operand as string, params)})`;
    case 'endsWith':
      return `(${field.type()} = 'text' AND ${endsWith(field.value(), operand as string, params)})`;
    default: {
      const type = typeof operand === 'number' ? `IN ${NUMBER_TYPES}` : "= 'text'";
      return `(${field.type()} ${type} AND ${field.value()} ${ORDERING[operator]} ${params.add(operand)})`;
    }
  }
}

function compileColumnCompare(
  predicate: Extract<KvPredicate, { kind: 'compare' }>,
  params: Parameters,
): string {
  const column = COLUMN_SQL[(predicate.field as Extract<KvFieldRef, { kind: 'column' }>).column];
  const { operator, operand } = predicate;
  switch (operator) {
    case 'eq':
      return `${column} = ${params.add(operand)}`;
    case 'neq':
      return `${column} <> ${params.add(operand)}`;
    case 'contains':
      return `instr(${column}, ${params.add(operand)}) > 0`;
    case 'startsWith':
      return startsWith(column, operand as string, params);
    case 'endsWith':
      return endsWith(column, operand as string, params);
    default:
      return `${column} ${ORDERING[operator]} ${params.add(operand)}`;
  }
}

/** Translates a predicate; every leaf yields 0 or 1 (never NULL), so NOT and OR mean what they say. */
function compilePredicate(predicate: KvPredicate, params: Parameters): string {
  switch (predicate.kind) {
    case 'and':
    case 'or': {
      if (predicate.items.length === 0) return predicate.kind === 'and' ? '1' : '0';
      const joiner = predicate.kind === 'and' ? ' AND ' : ' OR ';
      return `(${predicate.items.map((item) => compilePredicate(item, params)).join(joiner)})`;
    }
    case 'exists': {
      if (predicate.field.kind === 'column') return predicate.exists ? '1' : '0';
      const type = jsonField(predicate.field, params).type();
      return `${type} IS ${predicate.exists ? 'NOT ' : ''}NULL`;
    }
    case 'in': {
      const { field, negated, operands } = predicate;
      if (field.kind === 'column') {
        if (operands.length === 0) return negated ? '1' : '0';
        const list = operands.map((operand) => params.add(operand)).join(', ');
        return `${COLUMN_SQL[field.column]} ${negated ? 'NOT IN' : 'IN'} (${list})`;
      }
      if (operands.length === 0 && !negated) return '0';
      const json = jsonField(field, params);
      const present = `${json.type()} IS NOT NULL`;
      if (operands.length === 0) return present;
      const any = operands.map((operand) => jsonEquals(json, operand, params)).join(' OR ');
      return `COALESCE(${present} AND ${negated ? 'NOT ' : ''}(${any}), 0)`;
    }
    case 'compare':
      // Columns are NOT NULL, so their comparisons are never NULL: left bare, an index can serve them.
      if (predicate.field.kind === 'column') return `(${compileColumnCompare(predicate, params)})`;
      return `COALESCE(${compileJsonCompare(predicate, jsonField(predicate.field, params), params)}, 0)`;
  }
}

/** The SQL expressions of a sort vector, in the order of `sortPosition`'s components (ties: key, namespace). */
function sortExpressions(orderBy: KvSortKey[], params: Parameters): string[] {
  return orderBy.flatMap(({ field }) => {
    if (field.kind === 'column') return [COLUMN_SQL[field.column]];
    const json = jsonField(field, params);
    return [
      `CASE ${json.type()} WHEN 'null' THEN 1 WHEN 'false' THEN 2 WHEN 'true' THEN 3 WHEN 'integer' THEN 4
        WHEN 'real' THEN 4 WHEN 'text' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END`,
      `COALESCE(CASE WHEN ${json.type()} IN ${NUMBER_TYPES} THEN ${json.value()} END, 0)`,
      `COALESCE(CASE WHEN ${json.type()} = 'text' THEN ${json.value()} END, '')`,
    ];
  });
}

/** Rows strictly after a cursor position: lexicographic over the sort vector, then key and namespace. */
function afterPosition(plan: KvQueryPlan, params: Parameters): string {
  const after = plan.after;
  if (!after) return '1';
  const directions = [...vectorDirections(plan.orderBy), 'asc', 'asc'];
  const expressions = [...sortExpressions(plan.orderBy, params), 'r.key', 'r.namespace'];
  const values = [...after.vector, after.key, after.namespace].map((value) => params.add(value));
  const alternatives: string[] = [];
  for (let i = 0; i < directions.length; i++) {
    const terms: string[] = [];
    for (let j = 0; j < i; j++) terms.push(`${expressions[j]} = ${values[j]}`);
    terms.push(`${expressions[i]} ${directions[i] === 'desc' ? '<' : '>'} ${values[i]}`);
    alternatives.push(`(${terms.join(' AND ')})`);
  }
  return `(${alternatives.join(' OR ')})`;
}

/**
 * KV storage in a better-sqlite3 database, usually the agent store's own.
 *
 * ```ts
 * const kv = createKvStore(new SqliteKvBackend(db));
 * ```
 */
export class SqliteKvBackend implements KvBackend {
  readonly name = 'sqlite';
  private db: SqliteDatabase | undefined;
  private readonly statements = new Map<string, SqliteStatement>();
  private readonly busyTimeoutMs: number;
  private readonly readOnly: boolean;

  constructor(
    private readonly source: SqliteKvDatabaseSource,
    options: SqliteKvOptions = {},
  ) {
    this.busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    this.readOnly = options.readOnly ?? false;
  }

  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return classifySqliteError(error, ctx);
  }

  async open(): Promise<void> {
    const db = typeof this.source === 'function' ? await this.source() : this.source;
    if (db !== this.db) this.statements.clear();
    this.db = db;
    if (this.readOnly)
      await this.read(() => assertSchemaReadable(db, 'kv', SQLITE_KV_MIGRATIONS, resolve(db.name)));
    else await this.write(() => migrateSchema(db, 'kv', SQLITE_KV_MIGRATIONS));
  }

  // -- plumbing -------------------------------------------------------------

  private database(): SqliteDatabase {
    if (!this.db) throw new Error('the SQLite KV backend is not open');
    return this.db;
  }

  private statement(sql: string): SqliteStatement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.database().prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Retries a synchronous attempt while another connection holds the lock, waiting with timers. */
  private async retryWhileBusy<T>(attempt: () => T): Promise<T> {
    const started = Date.now();
    let delay = 1;
    for (;;) {
      try {
        return attempt();
      } catch (error) {
        if (!isBusyError(error)) throw damagedDatabaseError(error, resolve(this.database().name));
        const waited = Date.now() - started;
        if (waited >= this.busyTimeoutMs) {
          throw Object.assign(
            new Error(`the database stayed locked by another connection for ${waited} ms`, { cause: error }),
            { code: (error as { code: string }).code },
          );
        }
        await sleep(Math.min(this.busyTimeoutMs - waited, delay * (0.5 + Math.random())));
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  private inTransaction<T>(begin: string, body: () => T): T {
    const db = this.database();
    this.statement(begin).run();
    try {
      const result = body();
      this.statement('COMMIT').run();
      return result;
    } catch (error) {
      if (db.open && db.inTransaction) this.statement('ROLLBACK').run();
      throw error;
    }
  }

  /** A write transaction that holds the write lock from its first statement. */
  private write<T>(body: () => T): Promise<T> {
    return this.retryWhileBusy(() => this.inTransaction('BEGIN IMMEDIATE', body));
  }

  /** Several reads that must see one state (a read transaction is a snapshot in WAL mode). */
  private read<T>(body: () => T): Promise<T> {
    return this.retryWhileBusy(() => this.inTransaction('BEGIN DEFERRED', body));
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
    return this.retryWhileBusy(() => this.statement(SQL.getInstance).get(id) as KvInstanceRow | undefined);
  }

  listInstances(): Promise<KvInstanceRow[]> {
    return this.retryWhileBusy(() => this.statement(SQL.listInstances).all() as KvInstanceRow[]);
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
    // One set of named parameters serves both statements (extra names are ignored).
    const params = new Parameters();
    const filter = [
      `r.instance_id = ${params.add(plan.instanceId)}`,
      ...(plan.namespace === undefined ? [] : [`r.namespace = ${params.add(plan.namespace)}`]),
      `(r.expires_at IS NULL OR r.expires_at > ${params.add(now)})`,
      compilePredicate(plan.where, params),
    ].join(' AND ');
    const directions = vectorDirections(plan.orderBy);
    const order = [
      ...sortExpressions(plan.orderBy, params).map(
        (sql, i) => `${sql} ${directions[i] === 'desc' ? 'DESC' : 'ASC'}`,
      ),
      'r.key ASC',
      'r.namespace ASC',
    ].join(', ');
    const columns = [
      RECORD_COLUMNS,
      ...(plan.needsValue ? ['r.value AS value'] : []),
      ...(plan.needsMetadata ? ['r.metadata AS metadata'] : []),
    ].join(', ');
    // SQLite needs a LIMIT before an OFFSET; -1 means none.
    const page = `SELECT ${columns} FROM kode_kv_records r WHERE ${filter} AND ${afterPosition(plan, params)}
      ORDER BY ${order} LIMIT ${params.add(plan.limit ?? -1)} OFFSET ${params.add(plan.offset)}`;
    const total = `SELECT count(*) AS n FROM kode_kv_records r WHERE ${filter}`;
    return this.read(() => {
      if (!this.instanceExists(plan.instanceId)) return undefined;
      const db = this.database();
      return {
        rows: db.prepare(page).all(params.values) as KvQueryRow[],
        total: (db.prepare(total).get(params.values) as { n: number }).n,
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
