import { createHash } from 'node:crypto';
import { type AnyKodeStoreError, ConfigError, type ErrorContext } from '../../src/errors.js';
import type {
  KvBackend,
  KvInstanceRow,
  KvKeyRef,
  KvMutation,
  KvQueryRow,
  KvRecordRow,
} from '../../src/kv/kv-backend.js';
import {
  compareSortPositions,
  evaluatePlan,
  type KvFieldRef,
  type KvPredicate,
  type KvQueryPlan,
  type KvScalar,
  type KvSortKey,
  planReadsJson,
  sortPosition,
  vectorDirections,
} from '../../src/kv/kv-query.js';
import { viewOfRow } from '../../src/kv/kv-records.js';
import { prefixUpperBound } from '../../src/strings.js';
import {
  injectedPoolBounds,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryConfig,
  quoteIdentifier,
} from './postgres-config.js';
import { EXACT_TYPES, type Queryable } from './postgres-database.js';
import { classifyPostgresError, hearPoolErrors, type PostgresBounds } from './postgres-errors.js';
import { assertSchemaReadable, MIGRATION_LOCK_CLASS } from './postgres-schema.js';

/**
 * The KV backend on PostgreSQL (pg), in the agent store's schema.
 *
 * Storage choices, and why:
 * - Value and metadata are `text` holding `encodeJson` output, returned byte
 *   for byte. `jsonb` would reorder object keys, and it cannot hold `\u0000`
 *   or a lone surrogate at all, which are legal in JSON strings.
 * - Queries read the text as `jsonb`, cast per row. A row whose JSON jsonb
 *   cannot represent (`jsonb_ok = false`, decided when it is written) is kept
 *   out of the SQL and evaluated by the plain evaluator instead, and the two
 *   sorted streams are merged: the answer is the same as on every backend,
 *   and the rare rows cost only their own evaluation (a partial index finds
 *   them).
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
 */

/** The pool, or a function returning it once the owning store has opened it. */
export type PostgresKvPoolSource = PostgresPool | (() => PostgresPool | Promise<PostgresPool>);

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
}

/** Newest schema version of component `kv`. */
export const POSTGRES_KV_SCHEMA_VERSION = 1;

type Table = (name: string) => string;

const MIGRATIONS: Array<(t: Table) => string[]> = [
  (t) => [
    `CREATE TABLE ${t('kode_kv_instances')} (
      id text COLLATE "C" PRIMARY KEY,
      name text NOT NULL,
      description text NOT NULL,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL
    )`,
    `CREATE INDEX kode_kv_instances_by_created ON ${t('kode_kv_instances')} (created_at, id)`,
    `CREATE TABLE ${t('kode_kv_records')} (
      instance_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_kv_instances')} (id) ON DELETE CASCADE,
      namespace text COLLATE "C" NOT NULL,
      key text COLLATE "C" NOT NULL,
      id text NOT NULL,
      value text NOT NULL,
      metadata text NOT NULL,
      jsonb_ok boolean NOT NULL,
      version bigint NOT NULL,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL,
      expires_at bigint,
      created_by text,
      updated_by text,
      PRIMARY KEY (instance_id, namespace, key)
    )`,
    `CREATE INDEX kode_kv_records_expiring ON ${t('kode_kv_records')} (instance_id, namespace, expires_at)
      WHERE expires_at IS NOT NULL`,
    `CREATE INDEX kode_kv_records_by_expiry ON ${t('kode_kv_records')} (expires_at) WHERE expires_at IS NOT NULL`,
    `CREATE INDEX kode_kv_records_not_jsonb ON ${t('kode_kv_records')} (instance_id, namespace) WHERE NOT jsonb_ok`,
    `CREATE TABLE ${t('kode_kv_namespaces')} (
      instance_id text COLLATE "C" NOT NULL REFERENCES ${t('kode_kv_instances')} (id) ON DELETE CASCADE,
      namespace text COLLATE "C" NOT NULL,
      record_count bigint NOT NULL,
      PRIMARY KEY (instance_id, namespace)
    )`,
  ],
];

/**
 * A `\u0000` or lone-surrogate escape (preceded by an even number of
 * backslashes, so not an escaped backslash followed by "u0000"): JSON text
 * jsonb refuses. `JSON.stringify` writes surrogate pairs as characters, so
 * any `\udXXX` escape in its output is a lone surrogate.
 */
const NOT_JSONB = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** Whether PostgreSQL's jsonb can read this JSON text exactly. */
export function isJsonbReadable(jsonText: string): boolean {
  return !NOT_JSONB.test(jsonText);
}

const MAX_TRANSACTION_ATTEMPTS = 50;
/** SQLSTATEs after which a transaction is simply run again: serialization failure, deadlock. */
const RETRYABLE = new Set(['40001', '40P01']);

/** Thrown inside a transaction body to roll back and run it again (a lost insert race). */
class RetryTransaction extends Error {}

/** Numbered parameters (`$1`, `$2`, ...); a placeholder may appear any number of times. */
class Parameters {
  readonly values: unknown[] = [];
  add(value: unknown, cast = ''): string {
    this.values.push(value);
    return `$${this.values.length}${cast}`;
  }
}

const RECORD_COLUMNS = `r.instance_id AS "instanceId", r.namespace, r.key, r.id, r.version,
  r.created_at AS "createdAt", r.updated_at AS "updatedAt", r.expires_at AS "expiresAt",
  r.created_by AS "createdBy", r.updated_by AS "updatedBy"`;
const FULL_RECORD = `${RECORD_COLUMNS}, r.value, r.metadata`;
const INSTANCE_COLUMNS = 'id, name, description, created_at AS "createdAt", updated_at AS "updatedAt"';

const COLUMN_SQL = {
  key: 'r.key',
  namespace: 'r.namespace',
  version: 'r.version',
  createdAt: 'r.created_at',
  updatedAt: 'r.updated_at',
} as const;

const ORDERING: Record<string, string> = { gt: '>', gte: '>=', lt: '<', lte: '<=' };

/** The jsonb of a field: each path segment a bound text parameter, walked with `->` (object members only). */
function jsonExpression(field: Extract<KvFieldRef, { kind: 'json' }>, params: Parameters): string {
  const document = field.document === 'value' ? 'd.v' : 'd.m';
  return field.path.reduce((sql, segment) => `(${sql} -> ${params.add(segment, '::text')})`, document);
}

const asNumber = (x: string) => `(CASE WHEN jsonb_typeof(${x}) = 'number' THEN (${x})::numeric END)`;
const asText = (x: string) => `(CASE WHEN jsonb_typeof(${x}) = 'string' THEN ${x} #>> '{}' END)`;

function startsWith(text: string, prefix: string, params: Parameters): string {
  const upper = prefixUpperBound(prefix);
  const low = `${text} >= ${params.add(prefix, '::text')} COLLATE "C"`;
  return upper === undefined ? low : `(${low} AND ${text} < ${params.add(upper, '::text')} COLLATE "C")`;
}

function endsWith(text: string, suffix: string, params: Parameters): string {
  if (suffix === '') return `${text} IS NOT NULL`;
  const bound = params.add(suffix, '::text');
  return `right(${text}, char_length(${bound})) = ${bound}`;
}

function compileJsonCompare(
  x: string,
  predicate: Extract<KvPredicate, { kind: 'compare' }>,
  params: Parameters,
): string {
  const { operator, operand } = predicate;
  const json = (value: KvScalar) => params.add(JSON.stringify(value), '::jsonb');
  switch (operator) {
    case 'eq':
      return `${x} = ${json(operand)}`;
    case 'neq':
      return `(${x} IS NOT NULL AND ${x} <> ${json(operand)})`;
    case 'contains': {
      const inArray = `EXISTS (SELECT 1 FROM jsonb_array_elements(${x}) e(v) WHERE e.v = ${json(operand)})`;
      const inText =
        typeof operand === 'string'
          ? `WHEN 'string' THEN strpos(${x} #>> '{}', ${params.add(operand, '::text')}) > 0`
          : '';
      return `(CASE jsonb_typeof(${x}) ${inText} WHEN 'array' THEN ${inArray} ELSE false END)`;
    }
    case 'startsWith':
      return startsWith(asText(x), operand as string, params);
    case 'endsWith':
      return endsWith(asText(x), operand as string, params);
    default:
      return typeof operand === 'number'
        ? `${asNumber(x)} ${ORDERING[operator]} ${params.add(operand, '::numeric')}`
        : `${asText(x)} COLLATE "C" ${ORDERING[operator]} ${params.add(operand, '::text')}`;
  }
}

function compileColumnCompare(
  predicate: Extract<KvPredicate, { kind: 'compare' }>,
  params: Parameters,
): string {
  const field = predicate.field as Extract<KvFieldRef, { kind: 'column' }>;
  const column = COLUMN_SQL[field.column];
  const { operator, operand } = predicate;
  const bound = () => params.add(operand, typeof operand === 'number' ? '::numeric' : '::text');
  switch (operator) {
    case 'eq':
      return `${column} = ${bound()}`;
    case 'neq':
      return `${column} <> ${bound()}`;
    case 'contains':
      return `strpos(${column}, ${bound()}) > 0`;
    case 'startsWith':
      return startsWith(column, operand as string, params);
    case 'endsWith':
      return endsWith(column, operand as string, params);
    default:
      return `${column} ${ORDERING[operator]} ${bound()}`;
  }
}

/** Translates a predicate; every leaf is true or false (never NULL), so NOT and OR mean what they say. */
function compilePredicate(predicate: KvPredicate, params: Parameters): string {
  switch (predicate.kind) {
    case 'and':
    case 'or': {
      if (predicate.items.length === 0) return predicate.kind === 'and' ? 'true' : 'false';
      const joiner = predicate.kind === 'and' ? ' AND ' : ' OR ';
      return `(${predicate.items.map((item) => compilePredicate(item, params)).join(joiner)})`;
    }
    case 'exists': {
      if (predicate.field.kind === 'column') return predicate.exists ? 'true' : 'false';
      return `(${jsonExpression(predicate.field, params)} IS ${predicate.exists ? 'NOT ' : ''}NULL)`;
    }
    case 'in': {
      const { field, negated, operands } = predicate;
      if (field.kind === 'column') {
        const numeric = field.column !== 'key' && field.column !== 'namespace';
        const list = params.add(operands, numeric ? '::numeric[]' : '::text[]');
        return `${negated ? 'NOT ' : ''}(${COLUMN_SQL[field.column]} = ANY(${list}))`;
      }
      const x = jsonExpression(field, params);
      const list = params.add(
        operands.map((operand) => JSON.stringify(operand)),
        '::jsonb[]',
      );
      return `COALESCE(${x} IS NOT NULL AND ${negated ? 'NOT ' : ''}(${x} = ANY(${list})), false)`;
    }
    case 'compare':
      // Columns are NOT NULL, so their comparisons are never NULL: left bare, an index can serve them.
      if (predicate.field.kind === 'column') return `(${compileColumnCompare(predicate, params)})`;
      return `COALESCE(${compileJsonCompare(jsonExpression(predicate.field, params), predicate, params)}, false)`;
  }
}

interface SortComponent {
  sql: string;
  kind: 'number' | 'text';
}

/** The SQL of each sort-vector component, in the order of `sortPosition`. */
function sortComponents(orderBy: KvSortKey[], params: Parameters): SortComponent[] {
  return orderBy.flatMap(({ field }): SortComponent[] => {
    if (field.kind === 'column') {
      const text = field.column === 'key' || field.column === 'namespace';
      return [{ sql: COLUMN_SQL[field.column], kind: text ? 'text' : 'number' }];
    }
    const x = jsonExpression(field, params);
    return [
      {
        sql: `(CASE jsonb_typeof(${x}) WHEN 'null' THEN 1 WHEN 'boolean' THEN (CASE WHEN ${x} = 'true'::jsonb THEN 3 ELSE 2 END)
          WHEN 'number' THEN 4 WHEN 'string' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 7 ELSE 0 END)`,
        kind: 'number',
      },
      { sql: `COALESCE(${asNumber(x)}, 0)`, kind: 'number' },
      { sql: `COALESCE(${asText(x)}, '') COLLATE "C"`, kind: 'text' },
    ];
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this looks for.
const LONE_OR_NUL = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `expression op value` for a cursor component. A text position taken from a
 * row jsonb could not read (NUL or a lone surrogate in it) cannot be bound
 * as text; but the SQL side only holds strings without either, and against
 * those `s > c` is exactly `s >= c'` and `s < c` is `s < c'`, where c' is c
 * cut at the first such character, which is replaced by the next character
 * a string can hold there (U+0001 after NUL, U+E000 after a surrogate).
 */
function cursorTerm(
  component: SortComponent,
  op: '=' | '<' | '>',
  value: number | string,
  params: Parameters,
): string {
  if (component.kind === 'number') return `${component.sql} ${op} ${params.add(value, '::numeric')}`;
  let text = String(value);
  const odd = LONE_OR_NUL.exec(text);
  if (!odd) return `${component.sql} ${op} ${params.add(text, '::text')}`;
  if (op === '=') return 'false';
  text = text.slice(0, odd.index) + (odd[0] === '\u0000' ? '\u0001' : '\uE000');
  return `${component.sql} ${op === '>' ? '>=' : '<'} ${params.add(text, '::text')}`;
}

function afterPosition(plan: KvQueryPlan, params: Parameters): string {
  const after = plan.after;
  if (!after) return 'true';
  const components = [
    ...sortComponents(plan.orderBy, params),
    { sql: 'r.key', kind: 'text' as const },
    { sql: 'r.namespace', kind: 'text' as const },
  ];
  const directions = [...vectorDirections(plan.orderBy), 'asc', 'asc'];
  const values = [...after.vector, after.key, after.namespace];
  const alternatives: string[] = [];
  for (let i = 0; i < components.length; i++) {
    const terms: string[] = [];
    for (let j = 0; j < i; j++)
      terms.push(cursorTerm(components[j] as SortComponent, '=', values[j] as never, params));
    const op = directions[i] === 'desc' ? '<' : '>';
    terms.push(cursorTerm(components[i] as SortComponent, op, values[i] as never, params));
    alternatives.push(`(${terms.join(' AND ')})`);
  }
  return `(${alternatives.join(' OR ')})`;
}

function usesDocument(plan: KvQueryPlan, document: 'value' | 'metadata'): boolean {
  const inPredicate = (p: KvPredicate): boolean =>
    p.kind === 'and' || p.kind === 'or'
      ? p.items.some(inPredicate)
      : p.field.kind === 'json' && p.field.document === document;
  return (
    inPredicate(plan.where) ||
    plan.orderBy.some((key) => key.field.kind === 'json' && key.field.document === document)
  );
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
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
  private pool: PostgresPool | undefined;
  private readonly sql: ReturnType<typeof statements>;
  /** Names of the fixed statements, by text, when they run as named prepared statements. */
  private readonly statementNames = new Map<string, string>();
  private readonly readOnly: boolean;
  private readonly bounds: PostgresBounds;

  constructor(
    private readonly source: PostgresKvPoolSource,
    options: PostgresKvOptions = {},
  ) {
    // A pool handed in keeps its own settings; they are only read, to name them in errors.
    this.bounds =
      options.bounds ??
      (typeof source === 'function' ? injectedPoolBounds(undefined) : injectedPoolBounds(source));
    // A pool of the owning store is heard by the store; a pool handed in here
    // must be heard from now on (see hearPoolErrors).
    if (typeof source !== 'function') hearPoolErrors(source);
    const schema = options.schema ?? 'public';
    if (typeof schema !== 'string' || schema === '' || schema.includes('\u0000') || !schema.isWellFormed()) {
      throw new ConfigError('schema must be a non-empty string without NUL or lone surrogates', {
        backend: 'postgres',
        variable: 'schema',
      });
    }
    this.schema = schema;
    this.readOnly = options.readOnly ?? false;
    this.sql = statements((name) => `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`);
    if (options.preparedStatements !== undefined && typeof options.preparedStatements !== 'boolean') {
      throw new ConfigError('preparedStatements must be true or false', {
        backend: 'postgres',
        variable: 'preparedStatements',
      });
    }
    if (options.preparedStatements ?? true) {
      // Named after the text (which holds the schema): equal texts share one prepared statement.
      for (const text of Object.values(this.sql)) {
        if (typeof text !== 'string') continue; // built per call
        this.statementNames.set(
          text,
          `kode_kv_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`,
        );
      }
    }
  }

  /** pg's errors read as the agent store reads them: a lost connection is a `ConnectionError` on every path. */
  classifyError(error: unknown, ctx: Omit<ErrorContext, 'cause'>): AnyKodeStoreError | undefined {
    return classifyPostgresError(error, ctx, this.bounds);
  }

  /** What `pg` is handed: a fixed statement by name when prepared statements are on, any other by text. */
  private queryConfig(text: string, values: unknown[] = []): PostgresQueryConfig {
    const name = this.statementNames.get(text);
    return name === undefined
      ? { text, values, types: EXACT_TYPES }
      : { name, text, values, types: EXACT_TYPES };
  }

  async open(): Promise<void> {
    this.pool = typeof this.source === 'function' ? await this.source() : this.source;
    if (this.readOnly) {
      const pool = this.pool;
      const reader: Queryable = {
        query: async <R>(statement: string | { text: string }, values: unknown[] = []) =>
          (
            await pool.query<R>({
              text: typeof statement === 'string' ? statement : statement.text,
              values,
              types: EXACT_TYPES,
            })
          ).rows,
      };
      await assertSchemaReadable(reader, this.schema, 'kv', POSTGRES_KV_SCHEMA_VERSION);
      return;
    }
    await this.transaction(async (client) => {
      const query = (text: string, values: unknown[] = []) => client.query(this.queryConfig(text, values));
      // The same lock as the agent store's migrations: components of one schema migrate one at a time.
      await query('SELECT pg_advisory_xact_lock($1::int, hashtext($2))', [MIGRATION_LOCK_CLASS, this.schema]);
      const present = await query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
      if (present.rows.length === 0) await query(`CREATE SCHEMA ${quoteIdentifier(this.schema)}`);
      await query(
        `CREATE TABLE IF NOT EXISTS ${this.sql.versions} (component text PRIMARY KEY, version integer NOT NULL)`,
      );
      const found = await query(`SELECT version FROM ${this.sql.versions} WHERE component = 'kv'`);
      const current = (found.rows[0] as { version?: number } | undefined)?.version ?? 0;
      if (current > POSTGRES_KV_SCHEMA_VERSION) {
        throw new ConfigError(
          `schema ${JSON.stringify(this.schema)} is at KV version ${current}, newer than this kode-store knows (${POSTGRES_KV_SCHEMA_VERSION}); upgrade kode-store`,
          { backend: 'postgres', operation: 'kv.open', variable: 'schema' },
        );
      }
      const table = (name: string) => `${quoteIdentifier(this.schema)}.${quoteIdentifier(name)}`;
      for (let version = current; version < POSTGRES_KV_SCHEMA_VERSION; version++) {
        for (const statement of (MIGRATIONS[version] as (t: Table) => string[])(table))
          await query(statement);
      }
      if (current < POSTGRES_KV_SCHEMA_VERSION) {
        await query(
          `INSERT INTO ${this.sql.versions} (component, version) VALUES ('kv', $1)
           ON CONFLICT (component) DO UPDATE SET version = excluded.version`,
          [POSTGRES_KV_SCHEMA_VERSION],
        );
      }
    });
  }

  // -- plumbing -------------------------------------------------------------

  private connection(): PostgresPool {
    if (!this.pool) throw new Error('the PostgreSQL KV backend is not open');
    return this.pool;
  }

  private async rows<R>(text: string, values: unknown[] = []): Promise<R[]> {
    return (await this.connection().query<R>(this.queryConfig(text, values))).rows;
  }

  /**
   * Runs `body` in a transaction on one pooled client, again from the start
   * after a deadlock, a serialization failure or a lost insert race.
   */
  private async transaction<T>(
    body: (client: PostgresPoolClient) => Promise<T>,
    begin = 'BEGIN',
  ): Promise<T> {
    const client = await this.connection().connect();
    // A connection that dies while checked out emits 'error'; unheard, that would crash the process.
    const onError = () => undefined;
    client.on('error', onError);
    let broken: Error | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await client.query({ text: begin });
        } catch (error) {
          broken = error as Error;
          throw error;
        }
        try {
          const result = await body(client);
          await client.query({ text: 'COMMIT' });
          return result;
        } catch (error) {
          await client.query({ text: 'ROLLBACK' }).catch((rollbackError: Error) => {
            broken = rollbackError;
          });
          if (broken) throw error;
          const again = error instanceof RetryTransaction || RETRYABLE.has(errorCode(error) ?? '');
          if (!again || attempt >= MAX_TRANSACTION_ATTEMPTS) throw error;
        }
      }
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  private async instanceExists(id: string): Promise<boolean> {
    return (await this.rows(this.sql.instanceExists, [id])).length > 0;
  }

  // -- instances ------------------------------------------------------------

  async insertInstance(row: KvInstanceRow): Promise<boolean> {
    const rows = await this.rows(this.sql.insertInstance, [
      row.id,
      row.name,
      row.description,
      row.createdAt,
      row.updatedAt,
    ]);
    return rows.length === 1;
  }

  async getInstance(id: string): Promise<KvInstanceRow | undefined> {
    return (await this.rows<KvInstanceRow>(this.sql.getInstance, [id]))[0];
  }

  listInstances(): Promise<KvInstanceRow[]> {
    return this.rows<KvInstanceRow>(this.sql.listInstances);
  }

  async updateInstance(
    id: string,
    changes: { name?: string; description?: string },
    now: number,
  ): Promise<KvInstanceRow | undefined> {
    const rows = await this.rows<KvInstanceRow>(this.sql.updateInstance, [
      id,
      changes.name ?? null,
      changes.description ?? null,
      now,
    ]);
    return rows[0];
  }

  async deleteInstance(id: string): Promise<boolean> {
    // Records and counters go with it (ON DELETE CASCADE), in the same statement.
    return (await this.rows(this.sql.deleteInstance, [id])).length === 1;
  }

  // -- records --------------------------------------------------------------

  async getRecords(
    instanceId: string,
    refs: KvKeyRef[],
    now: number,
  ): Promise<Array<KvRecordRow | undefined> | undefined> {
    const rows = await this.rows<KvRecordRow>(this.sql.getLiveRecords, [
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
    return this.transaction(async (client) => {
      const query = async <R>(text: string, values: unknown[]) =>
        (await client.query<R>(this.queryConfig(text, values))).rows;
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
    return this.transaction(async (client) => {
      const run = async <R>(text: string, values: unknown[]) =>
        (await client.query<R>(this.queryConfig(text, values))).rows;
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
    const rows = await this.rows<{ namespace: string }>(this.sql.namespaces, [instanceId, now]);
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
        ? await this.rows<{ present: boolean; n: number }>(this.sql.countInstance, [instanceId, now])
        : await this.rows<{ present: boolean; n: number }>(this.sql.countNamespace, [
            instanceId,
            namespace,
            now,
          ]);
    return row?.present ? Number(row.n) : undefined;
  }

  query(plan: KvQueryPlan, now: number): Promise<{ rows: KvQueryRow[]; total: number } | undefined> {
    const readsJson = planReadsJson(plan);
    const params = new Parameters();
    const scope = [`r.instance_id = ${params.add(plan.instanceId, '::text')}`];
    if (plan.namespace !== undefined) scope.push(`r.namespace = ${params.add(plan.namespace, '::text')}`);
    scope.push(`(r.expires_at IS NULL OR r.expires_at > ${params.add(now, '::bigint')})`);
    const scopeValues = params.values.length;
    // Rows jsonb cannot read are left to the plain evaluator (below); the
    // CASE keeps the cast from ever seeing them, whatever order PostgreSQL
    // evaluates the conditions in.
    const documents = [
      ...(usesDocument(plan, 'value') ? ['CASE WHEN r.jsonb_ok THEN r.value::jsonb END AS v'] : []),
      ...(usesDocument(plan, 'metadata') ? ['CASE WHEN r.jsonb_ok THEN r.metadata::jsonb END AS m'] : []),
    ];
    // OFFSET 0 keeps the subquery from being inlined: each row's text is parsed once, not per reference.
    const from = `${this.sql.records} r${documents.length > 0 ? ` CROSS JOIN LATERAL (SELECT ${documents.join(', ')} OFFSET 0) d` : ''}`;
    const filter = [
      ...scope,
      ...(readsJson ? ['r.jsonb_ok'] : []),
      compilePredicate(plan.where, params),
    ].join(' AND ');
    // The count statement binds exactly the filter's parameters (PostgreSQL refuses unused ones).
    const filterValues = [...params.values];
    const directions = vectorDirections(plan.orderBy);
    const order = [
      ...sortComponents(plan.orderBy, params).map(
        (component, i) => `${component.sql} ${directions[i] === 'desc' ? 'DESC' : 'ASC'}`,
      ),
      'r.key ASC',
      'r.namespace ASC',
    ].join(', ');
    const columns = [
      RECORD_COLUMNS,
      ...(plan.needsValue ? ['r.value'] : []),
      ...(plan.needsMetadata ? ['r.metadata'] : []),
    ].join(', ');
    const after = afterPosition(plan, params);

    // Without limit, offset or cursor the page is every match: its length is the total.
    const counts = plan.limit !== undefined || plan.offset > 0 || plan.after !== undefined;
    const answer = async (run: <R>(text: string, values: unknown[]) => Promise<R[]>) => {
      const aside = readsJson
        ? await run<KvRecordRow>(
            this.sql.notJsonbRows(plan.namespace !== undefined),
            params.values.slice(0, scopeValues),
          )
        : [];
      const evaluated = evaluatePlan(
        aside.map((row) => ({ ...viewOfRow(row), row })),
        { where: plan.where, orderBy: plan.orderBy, after: plan.after, offset: 0, limit: undefined },
      );
      // With rows aside, the SQL page starts at 0 and covers offset + limit, and the merge cuts the page.
      const merging = evaluated.total > 0;
      const sqlLimit = plan.limit === undefined ? null : merging ? plan.offset + plan.limit : plan.limit;
      const sqlOffset = merging ? 0 : plan.offset;
      const pageValues = [...params.values];
      const limitSql = `LIMIT $${pageValues.push(sqlLimit)}::bigint OFFSET $${pageValues.push(sqlOffset)}::bigint`;
      const rows = await run<KvQueryRow>(
        `SELECT ${columns} FROM ${from} WHERE ${filter} AND ${after} ORDER BY ${order} ${limitSql}`,
        pageValues,
      );
      const [counted] = counts
        ? await run<{ n: number }>(`SELECT count(*) AS n FROM ${from} WHERE ${filter}`, filterValues)
        : [{ n: rows.length }];
      // evaluatePlan's total ignores the cursor, like the SQL count.
      const total = Number(counted?.n ?? 0) + evaluated.total;
      if (total === 0 && !(await run(this.sql.instanceExists, [plan.instanceId])).length) return undefined;
      if (!merging) return { rows, total };
      const positioned = (row: KvQueryRow) => ({ row, position: sortPosition(viewOfRow(row), plan.orderBy) });
      const merged = [...rows.map(positioned), ...evaluated.records.map((view) => positioned(view.row))].sort(
        (a, b) => compareSortPositions(a.position, b.position, directions),
      );
      const end = plan.limit === undefined ? undefined : plan.offset + plan.limit;
      return { rows: merged.slice(plan.offset, end).map((entry) => entry.row), total };
    };
    // One statement needs no transaction; several read one snapshot, so the page, the rows set aside and the total agree.
    if (!readsJson && !counts) return answer((text, values) => this.rows(text, values));
    return this.transaction(
      (client) =>
        answer(
          async <R>(text: string, values: unknown[]) =>
            (await client.query<R>(this.queryConfig(text, values))).rows,
        ),
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }

  async sweepExpired(now: number): Promise<number> {
    return this.transaction(async (client) => {
      const run = async <R>(text: string, values: unknown[]) =>
        (await client.query<R>(this.queryConfig(text, values))).rows;
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

/** Every fixed statement, built once per schema. */
function statements(t: Table) {
  const records = t('kode_kv_records');
  const instances = t('kode_kv_instances');
  const counters = t('kode_kv_namespaces');
  const keys = 'unnest($2::text[], $3::text[]) AS k(namespace, key)';
  return {
    records,
    versions: t('kode_schema_version'),
    insertInstance: `INSERT INTO ${instances} (id, name, description, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id`,
    getInstance: `SELECT ${INSTANCE_COLUMNS} FROM ${instances} WHERE id = $1`,
    instanceExists: `SELECT 1 FROM ${instances} WHERE id = $1`,
    lockInstance: `SELECT 1 FROM ${instances} WHERE id = $1 FOR KEY SHARE`,
    listInstances: `SELECT ${INSTANCE_COLUMNS} FROM ${instances} ORDER BY created_at, id`,
    updateInstance: `UPDATE ${instances} SET name = COALESCE($2, name), description = COALESCE($3, description),
      updated_at = GREATEST($4::bigint, updated_at + 1) WHERE id = $1 RETURNING ${INSTANCE_COLUMNS}`,
    deleteInstance: `DELETE FROM ${instances} WHERE id = $1 RETURNING id`,
    getLiveRecords: `SELECT ${FULL_RECORD} FROM ${records} r JOIN ${keys}
      ON r.namespace = k.namespace AND r.key = k.key
      WHERE r.instance_id = $1 AND (r.expires_at IS NULL OR r.expires_at > $4)`,
    // Locked in key order, so two multi-key writers cannot deadlock on each other's rows.
    lockRecords: `SELECT ${FULL_RECORD} FROM ${records} r JOIN ${keys}
      ON r.namespace = k.namespace AND r.key = k.key
      WHERE r.instance_id = $1 ORDER BY r.namespace, r.key FOR UPDATE OF r`,
    // Rows and their namespace counters change in one statement; the namespaces
    // whose counter reached zero come back, for the caller to drop.
    deleteRecords: `WITH gone AS (
        DELETE FROM ${records} r USING ${keys}
        WHERE r.instance_id = $1 AND r.namespace = k.namespace AND r.key = k.key RETURNING r.namespace
      ), tally AS (
        SELECT namespace, count(*) AS n FROM gone GROUP BY namespace
      )
      UPDATE ${counters} c SET record_count = c.record_count - tally.n FROM tally
      WHERE c.instance_id = $1 AND c.namespace = tally.namespace
      RETURNING c.namespace, c.record_count AS "recordCount"`,
    updateRecord: `UPDATE ${records} SET id = $4, value = $5, metadata = $6, jsonb_ok = $7, version = $8,
      created_at = $9, updated_at = $10, expires_at = $11, created_by = $12, updated_by = $13
      WHERE instance_id = $1 AND namespace = $2 AND key = $3`,
    insertRecords: `WITH added AS (
        INSERT INTO ${records} (instance_id, namespace, key, id, value, metadata, jsonb_ok, version,
          created_at, updated_at, expires_at, created_by, updated_by)
        SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[],
          $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[])
        ON CONFLICT (instance_id, namespace, key) DO NOTHING RETURNING namespace
      ), counted AS (
        INSERT INTO ${counters} (instance_id, namespace, record_count)
        SELECT $1, namespace, count(*) FROM added GROUP BY namespace ORDER BY namespace
        ON CONFLICT (instance_id, namespace) DO UPDATE SET record_count = ${counters}.record_count + excluded.record_count
        RETURNING 1
      )
      SELECT count(*) AS n FROM added`,
    dropEmptyCounter: `DELETE FROM ${counters} WHERE instance_id = $1 AND namespace = $2 AND record_count <= 0`,
    dropEmptyCounters: `DELETE FROM ${counters} c USING unnest($1::text[], $2::text[]) AS g(instance_id, namespace)
      WHERE c.instance_id = g.instance_id AND c.namespace = g.namespace AND c.record_count <= 0`,
    // One statement: the rows go, the counter drops by what went (a delta, so
    // a row another writer inserts meanwhile keeps its count).
    deleteNamespace: `WITH gone AS (
        DELETE FROM ${records} WHERE instance_id = $1 AND namespace = $2 RETURNING expires_at
      ), tally AS (
        SELECT count(*) AS stored, count(*) FILTER (WHERE expires_at IS NULL OR expires_at > $3) AS live FROM gone
      ), adjusted AS (
        UPDATE ${counters} c SET record_count = c.record_count - tally.stored FROM tally
        WHERE c.instance_id = $1 AND c.namespace = $2 RETURNING 1
      )
      SELECT EXISTS (SELECT 1 FROM ${instances} WHERE id = $1) AS present, (SELECT live FROM tally) AS live,
        (SELECT count(*) FROM adjusted) AS adjusted`,
    // A counter minus the expired rows still stored (found by the partial index on expires_at).
    countNamespace: `SELECT EXISTS (SELECT 1 FROM ${instances} WHERE id = $1) AS present,
      COALESCE((SELECT record_count FROM ${counters} WHERE instance_id = $1 AND namespace = $2), 0)
      - (SELECT count(*) FROM ${records} WHERE instance_id = $1 AND namespace = $2 AND expires_at <= $3) AS n`,
    countInstance: `SELECT EXISTS (SELECT 1 FROM ${instances} WHERE id = $1) AS present,
      COALESCE((SELECT sum(record_count) FROM ${counters} WHERE instance_id = $1), 0)
      - (SELECT count(*) FROM ${records} WHERE instance_id = $1 AND expires_at <= $2) AS n`,
    namespaces: `SELECT c.namespace FROM ${counters} c
      WHERE c.instance_id = $1 AND c.record_count > (SELECT count(*) FROM ${records} r
        WHERE r.instance_id = c.instance_id AND r.namespace = c.namespace AND r.expires_at <= $2)
      ORDER BY c.namespace`,
    notJsonbRows: (withNamespace: boolean) => `SELECT ${FULL_RECORD} FROM ${records} r
      WHERE r.instance_id = $1 ${withNamespace ? 'AND r.namespace = $2' : ''} AND NOT r.jsonb_ok
        AND (r.expires_at IS NULL OR r.expires_at > $${withNamespace ? 3 : 2})`,
    sweep: `WITH gone AS (
        DELETE FROM ${records} WHERE expires_at <= $1 RETURNING instance_id, namespace
      ), groups AS (
        SELECT instance_id, namespace, count(*) AS n FROM gone GROUP BY instance_id, namespace
      ), adjusted AS (
        UPDATE ${counters} c SET record_count = c.record_count - g.n FROM groups g
        WHERE c.instance_id = g.instance_id AND c.namespace = g.namespace RETURNING 1
      )
      SELECT instance_id AS "instanceId", namespace, n, (SELECT count(*) FROM adjusted) AS adjusted FROM groups`,
  };
}
