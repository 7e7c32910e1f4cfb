import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { AGENT_SCHEMA_VERSION, migrateAgentSchema } from '../../../adapters/postgres/postgres-schema.js';
import { compareCodePoints } from '../../../src/strings.js';
import type { AgentInfo, Message, ReadEventsOptions, Timeline, ToolCallRecord } from '../../../src/types.js';
import {
  adminQuery,
  describePostgres,
  dropSchema,
  type RecordedStatement,
  recordingPool,
  requirePostgresUrl,
  uniqueSchemaName,
  useTestSchema,
} from '../../helpers/postgres.js';

/**
 * What is specific to PostgreSQL: construction, exact round trips through
 * text columns, time zones, index use, schema isolation, the cost of the
 * SDK's hot paths, and faults (terminated connections, unreachable server).
 * The store's general contract is the conformance suite's job.
 */

const run = promisify(execFile);
const child = (name: string) => fileURLToPath(new URL(`../../child/${name}`, import.meta.url));

let counter = 0;
const agentId = (label: string) => `${label}-${process.pid}-${++counter}`;

function info(id: string, extra: Partial<AgentInfo> = {}): AgentInfo {
  return {
    agentId: id,
    templateId: 'template',
    createdAt: '2025-01-02T03:04:05.678Z',
    lineage: [],
    configVersion: 'v1',
    messageCount: 0,
    lastSfpIndex: -1,
    ...extra,
  };
}

function toolCall(id: string, extra: Partial<ToolCallRecord> = {}): ToolCallRecord {
  return {
    id,
    name: 'bash_run',
    input: { command: 'ls' },
    state: 'COMPLETED',
    approval: { required: false },
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_100,
    auditTrail: [{ state: 'COMPLETED', timestamp: 1_700_000_000_100 }],
    ...extra,
  };
}

const text = (t: string): Message => ({ role: 'user', content: [{ type: 'text', text: t }] });

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Filter?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Plans?: PlanNode[];
}

/** Scans of the store's tables that no index condition narrows down (EXPLAIN's JSON plan). */
function scansWithoutIndex(node: PlanNode | undefined): string[] {
  if (!node) return [];
  const found: string[] = [];
  const relation = node['Relation Name'];
  if (relation?.startsWith('kode_')) {
    const type = node['Node Type'];
    if (type === 'Seq Scan') found.push(`Seq Scan on ${relation}`);
    else if (node.Filter && !node['Index Cond'] && !node['Recheck Cond']) {
      found.push(`${type} on ${relation} filtering ${node.Filter} without an index condition`);
    }
  }
  for (const child of node.Plans ?? []) found.push(...scansWithoutIndex(child));
  return found;
}

/** The node types of a plan, depth first. */
function planNodes(node: PlanNode | undefined): string[] {
  if (!node) return [];
  return [node['Node Type'], ...(node.Plans ?? []).flatMap(planNodes)];
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describePostgres('PostgresStore on PostgreSQL', () => {
  const place = useTestSchema('store');
  const stores: PostgresStore[] = [];
  const open = (extra: Partial<ConstructorParameters<typeof PostgresStore>[0] & object> = {}) => {
    const store = new PostgresStore({
      connection: { connectionString: place.url, max: 4, applicationName: 'kode-store-test-store' },
      schema: place.schema,
      ...extra,
    });
    stores.push(store);
    return store;
  };
  let store: PostgresStore;

  beforeAll(() => {
    store = open();
  });
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
  });

  // ---- construction ----------------------------------------------------

  it('accepts the seed 004 form: connection fields plus fileStoreBaseDir', async () => {
    const url = new URL(place.url);
    const seedStyle = new PostgresStore(
      {
        host: url.hostname,
        port: Number(url.port || 5432),
        database: url.pathname.slice(1),
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password),
        max: 2,
        idleTimeoutMillis: 1000,
        connectionTimeoutMillis: 5000,
      },
      '/tmp/kode-store-unused-dir',
    );
    stores.push(seedStyle);
    expect(seedStyle.fileStoreBaseDir).toBe('/tmp/kode-store-unused-dir');
    expect(seedStyle.schema).toBe('public');
    expect(seedStyle.capabilities.fileEvents).toBe(false);
    // A round trip without migrations: this form has no schema option, and
    // tests must not create tables in the shared database's public schema.
    expect(await seedStyle.db.ping()).toBeGreaterThanOrEqual(0);
    await seedStyle.close();
  });

  it('refuses contradictory or incomplete settings with ConfigError naming the setting', () => {
    const attempts: Array<[() => unknown, string]> = [
      [() => new PostgresStore({ connection: place.url, host: 'x' } as never), 'host'],
      [() => new PostgresStore({ schema: 'x' } as never), 'connection'],
      [() => new PostgresStore({ connection: place.url, pool: new pg.Pool() } as never), 'pool'],
      [() => new PostgresStore({ connection: place.url, schema: 'x'.repeat(64) }), 'schema'],
      [() => new PostgresStore({ connection: place.url, schema: 'a\u0000b' }), 'schema'],
      [() => new PostgresStore({ connection: place.url, eventStorage: 'file' }), 'fileStoreBaseDir'],
      [() => new PostgresStore({ connection: place.url, eventStorage: 'disk' as never }), 'eventStorage'],
      [() => new PostgresStore('mysql://localhost/db'), 'connection'],
      [() => new PostgresStore({ connection: { host: 'h', max: 0 } }), 'max'],
      [() => new PostgresStore({ connection: place.url, lockLeaseMs: 5 }), 'lockLeaseMs'],
      [
        () => new PostgresStore({ connection: place.url, preparedStatements: 'yes' as never }),
        'preparedStatements',
      ],
    ];
    for (const [attempt, variable] of attempts) {
      let caught: unknown;
      try {
        attempt();
      } catch (error) {
        caught = error;
      }
      expect(caught, `expected a ConfigError for ${variable}`).toMatchObject({
        code: 'KODE_CONFIG',
        variable,
      });
    }
  });

  it('prepares its fixed statements by name (parsed and planned once per connection) unless told not to', async () => {
    const preparedOn = async (preparedStatements: boolean | undefined) => {
      const pool = new pg.Pool({ connectionString: place.url, max: 1 });
      // A schema of its own: the KV tables this creates must not appear in the file's shared schema.
      const schema = uniqueSchemaName('prepared');
      try {
        const store = new PostgresStore({
          pool,
          schema,
          ...(preparedStatements === undefined ? {} : { preparedStatements }),
        });
        const id = agentId('prepared');
        for (let step = 1; step <= 3; step++) {
          await store.saveMessages(id, [{ role: 'user', content: [{ type: 'text', text: `step ${step}` }] }]);
          await store.saveInfo(id, info(id, { messageCount: step }));
        }
        expect(await store.loadMessages(id)).toHaveLength(1);
        await store.kv.set(id, 'ns', 'k', { n: 1 }, { autoCreateInstance: true });
        expect((await store.kv.get(id, 'ns', 'k')).value).toEqual({ n: 1 });
        await store.close();
        // The same (only) connection: its session's prepared statements.
        const rows = await pool.query<{ name: string; statement: string }>(
          "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'kode\\_%'",
        );
        return rows.rows;
      } finally {
        await pool.end();
        await dropSchema(schema);
      }
    };
    const prepared = await preparedOn(undefined);
    expect(prepared.length).toBeGreaterThanOrEqual(2);
    expect(prepared.some((row) => row.statement.includes('info_json'))).toBe(true);
    expect(prepared.some((row) => row.name.startsWith('kode_kv_'))).toBe(true);
    expect(await preparedOn(false)).toEqual([]);
  });

  it('uses an injected pg.Pool and leaves it open on close()', async () => {
    const pool = new pg.Pool({ connectionString: place.url, max: 2 });
    try {
      const injected = new PostgresStore({ pool, schema: place.schema });
      const id = agentId('injected');
      await injected.saveInfo(id, info(id));
      await injected.close();
      const rows = await pool.query('SELECT 1 AS one');
      expect(rows.rows[0]).toEqual({ one: 1 });
      await expect(injected.loadInfo(id)).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    } finally {
      await pool.end();
    }
  });

  it('reports a missing pg driver as ConfigError telling how to install it', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', child('postgres-without-pg.ts')]);
    const result = JSON.parse(stdout.trim()) as { code: string; message: string; variable: string };
    expect(result.code).toBe('KODE_CONFIG');
    expect(result.variable).toBe('pg');
    expect(result.message).toContain('npm install pg');
  });

  it('reads events through an injected pool from a copy of pg it cannot resolve itself', async () => {
    const schema = uniqueSchemaName('foreign_pg');
    try {
      const { stdout } = await run(process.execPath, [
        '--import',
        'tsx',
        child('postgres-injected-pool-without-pg.ts'),
        place.url,
        schema,
      ]);
      expect(JSON.parse(stdout.trim())).toEqual({ deltas: ['chunk 1', 'chunk 2', 'chunk 3'] });
    } finally {
      await dropSchema(schema);
    }
  });

  // ---- exact round trips -----------------------------------------------

  it('keeps object key order that jsonb would sort', async () => {
    const id = agentId('keys');
    const input = { zeta: 1, alpha: { z: [3, 2, 1], a: null }, mid: '', é: false, aa: 0 };
    const messages: Message[] = [
      { role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'n', input }] },
    ];
    await store.saveMessages(id, messages);
    const [loaded] = await store.loadMessages(id);
    expect(JSON.stringify(loaded)).toBe(JSON.stringify(messages[0]));
    const block = loaded?.content[0] as { input: Record<string, unknown> };
    expect(Object.keys(block.input)).toEqual(['zeta', 'alpha', 'mid', 'é', 'aa']);
  });

  it('round-trips NUL, lone surrogates, SQL-looking text and 1 MiB blocks in every string field, and finds them by every filter', async () => {
    const hostile = [
      "'; DROP TABLE kode_agents; --",
      'nul\u0000inside',
      'lone \ud800 high',
      'lone \udc00 low',
      '"quoted"',
      '%_*\\',
      "$1 $$ E'\\x00'",
      '\ufffd',
    ];
    const big = 'x'.repeat(1024 * 1024);
    for (const [i, weird] of hostile.entries()) {
      const id = `${agentId('hostile')}-${i} ${"'; --"}`;
      const record = toolCall(weird, {
        name: weird,
        state: weird as never,
        input: { [weird]: weird },
        error: weird,
      });
      const message: Message = {
        role: weird as never,
        content: [{ type: weird as never, text: weird } as never, { type: 'text', text: big }],
      };
      const saved = info(id, {
        templateId: weird,
        createdAt: weird,
        metadata: { userId: weird, [weird]: weird },
      });
      await store.saveInfo(id, saved);
      await store.saveMessages(id, [message]);
      await store.saveToolCallRecords(id, [record]);
      await store.saveSnapshot(id, {
        id: weird,
        messages: [message],
        lastSfpIndex: 0,
        lastBookmark: { seq: 1, timestamp: 2 },
        createdAt: weird,
      });
      await store.saveTodos(id, {
        todos: [{ id: weird, title: weird, status: 'pending', createdAt: 1, updatedAt: 2 }],
        version: 1,
        updatedAt: 2,
      });
      const timeline = {
        cursor: 1,
        bookmark: { seq: 1, timestamp: 2 },
        event: { channel: weird, type: weird },
      };
      await store.appendEvent(id, timeline as unknown as Timeline);

      expect(await store.loadInfo(id)).toEqual(saved);
      expect(await store.loadMessages(id)).toEqual([message]);
      expect(await store.loadToolCallRecords(id)).toEqual([record]);
      expect((await store.loadSnapshot(id, weird))?.createdAt).toBe(weird);
      expect((await store.loadTodos(id))?.todos[0]?.title).toBe(weird);
      expect(await collect(store.readEvents(id, { channel: weird as never }))).toEqual([timeline]);

      // Filters match exactly what was saved, and nothing else (U+FFFD is not a lone surrogate).
      expect(await store.querySessions({ templateId: weird, agentId: id })).toHaveLength(1);
      expect(await store.querySessions({ userId: weird, agentId: id })).toHaveLength(1);
      expect(await store.queryMessages({ role: weird as never, agentId: id })).toHaveLength(1);
      expect(await store.queryMessages({ contentType: weird, agentId: id })).toHaveLength(1);
      expect(await store.queryToolCalls({ toolName: weird, agentId: id })).toHaveLength(1);
      expect(await store.queryToolCalls({ state: weird as never, agentId: id })).toHaveLength(1);
      expect((await store.aggregateStats(id)).toolCallsByName).toEqual({ [weird]: 1 });
      if (weird !== '\ufffd') {
        expect(await store.queryToolCalls({ toolName: '\ufffd', agentId: id })).toEqual([]);
      }
    }
  });

  it('loads numbers as numbers: 64-bit counts, epoch milliseconds, large integers', async () => {
    const id = agentId('numbers');
    const record = toolCall('n', { createdAt: 2 ** 53 - 1, updatedAt: 2 ** 53 - 1, durationMs: 0.5 });
    await store.saveToolCallRecords(id, [record]);
    await store.saveInfo(id, info(id, { messageCount: 2 ** 40, lastSfpIndex: -1 }));
    expect(await store.loadToolCallRecords(id)).toEqual([record]);
    expect((await store.loadInfo(id))?.messageCount).toBe(2 ** 40);
    const sessions = await store.querySessions({ agentId: id });
    expect(sessions[0]?.messageCount).toBe(2 ** 40);
    const stats = await store.aggregateStats(id);
    expect(stats.totalToolCalls).toBe(1);
    const metrics = await store.getMetrics();
    for (const value of Object.values(metrics.storage)) expect(typeof value).toBe('number');
  });

  it('gives the same answers whatever the process and session time zones', async () => {
    const id = agentId('tz');
    const url = new URL(place.url);
    url.searchParams.set('options', '-c TimeZone=Pacific/Chatham');
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', child('postgres-tz-writer.ts'), url.toString(), place.schema, id],
      { env: { ...process.env, TZ: 'Asia/Kolkata' } },
    );
    const written = JSON.parse(stdout.trim()) as {
      processTimeZone: string;
      sessionTimeZone: string;
      info: AgentInfo;
      before: number;
      after: number;
    };
    // The child really ran elsewhere in time; this process keeps its own zone.
    expect(written.processTimeZone).toMatch(/Asia\/(Kolkata|Calcutta)/);
    expect(written.sessionTimeZone).toBe('Pacific/Chatham');
    expect(Intl.DateTimeFormat().resolvedOptions().timeZone).not.toMatch(/Kolkata|Calcutta/);

    expect(await store.loadInfo(id)).toEqual(written.info);
    const createdMs = Date.parse(written.info.createdAt);
    expect(await store.querySessions({ agentId: id, startDate: createdMs, endDate: createdMs })).toHaveLength(
      1,
    );
    expect(
      await store.querySessions({ agentId: id, createdAfter: new Date(createdMs), endDate: createdMs + 1 }),
    ).toHaveLength(0);
    const messages = await store.queryMessages({
      agentId: id,
      startDate: written.before,
      endDate: written.after,
    });
    expect(messages).toEqual([text('written in Kolkata')]);
    expect(
      await store.queryToolCalls({ agentId: id, startDate: 1748760000000, endDate: 1748760000000 }),
    ).toHaveLength(1);
  });

  // ---- schemas ----------------------------------------------------------

  it('keeps stores in two schemas apart, whatever the schema is called', async () => {
    const other = open({ schema: place.also(`${place.schema} "weird"; DROP`) });
    const id = agentId('isolated');
    await store.saveInfo(id, info(id));
    await store.saveMessages(id, [text('only in the first schema')]);
    await other.saveMessages(`${id}-other`, [text('only in the second')]);
    expect(await other.exists(id)).toBe(false);
    expect(await other.loadMessages(id)).toEqual([]);
    expect(await other.list(id)).toEqual([`${id}-other`]);
    expect(await other.querySessions({ agentId: id })).toEqual([]);
    expect(await store.exists(`${id}-other`)).toBe(false);
    const tables = await adminQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1',
      [other.schema],
    );
    expect(tables[0]?.n).toBeGreaterThan(5);
  });

  it('migrates a fresh schema from several stores at once, and refuses a newer schema version', async () => {
    const fresh = place.also(`${place.schema}_fresh`);
    const racers = Array.from({ length: 4 }, () => open({ schema: fresh }));
    await Promise.all(racers.map((s, i) => s.saveInfo(`racer-${i}`, info(`racer-${i}`))));
    expect(await racers[0]?.list('racer-')).toEqual(['racer-0', 'racer-1', 'racer-2', 'racer-3']);
    const versions = await adminQuery<{ component: string; version: number }>(
      `SELECT component, version FROM ${pg.escapeIdentifier(fresh)}.kode_schema_version`,
    );
    expect(versions).toEqual([{ component: 'agent', version: AGENT_SCHEMA_VERSION }]);

    await adminQuery(
      `UPDATE ${pg.escapeIdentifier(fresh)}.kode_schema_version SET version = 99 WHERE component = 'agent'`,
    );
    const newer = open({ schema: fresh });
    await expect(newer.loadInfo('racer-0')).rejects.toMatchObject({
      code: 'KODE_CONFIG',
      variable: 'schema',
    });
    await adminQuery(
      `UPDATE ${pg.escapeIdentifier(fresh)}.kode_schema_version SET version = $1 WHERE component = 'agent'`,
      [AGENT_SCHEMA_VERSION],
    );
    // The failed migration is retried on the next call.
    expect(await newer.loadInfo('racer-0')).toEqual(info('racer-0'));
  });

  it('upgrades a version-1 schema holding data: lists and queries intact, the indexes of a fresh schema, no foreign keys on the list tables', async () => {
    const old = place.also(`${place.schema}_v1`);
    const client = new pg.Client({ connectionString: place.url });
    await client.connect();
    try {
      const tx = {
        query: async <R>(text: string, values?: unknown[]) => (await client.query(text, values)).rows as R[],
      };
      await migrateAgentSchema(tx, old, 1);
    } finally {
      await client.end();
    }
    const s = pg.escapeIdentifier(old);
    const id = 'written-by-v1';
    const messages = [
      { role: 'system', content: [{ type: 'text', text: 'summary' }] } as Message,
      text('question'),
      { role: 'assistant', content: [{ type: 'text', text: 'answer' }] } as Message,
    ];
    const calls = [
      toolCall('call-1', { state: 'FAILED', isError: true }),
      toolCall('call-2', { approval: { required: true } }),
    ];
    // Rows as version 1 of the store wrote them.
    await adminQuery(
      `INSERT INTO ${s}.kode_agents (agent_id, messages_revision, tool_calls_revision) VALUES ($1, 1, 2)`,
      [id],
    );
    await adminQuery(
      `INSERT INTO ${s}.kode_messages (agent_id, position, message_json, role_key, content_types, created_at_ms)
       SELECT $1, n - 1, m, (m::json)->>'role', ARRAY['text'], 1000 + n FROM unnest($2::text[]) WITH ORDINALITY AS u(m, n)`,
      [id, messages.map((m) => JSON.stringify(m))],
    );
    await adminQuery(
      `INSERT INTO ${s}.kode_tool_calls (agent_id, position, tool_call_key, record_json, name_key, state_key,
         is_error, has_approval, created_at_ms, updated_at_ms)
       SELECT $1, n - 1, (r::json)->>'id', r, 'bash_run', (r::json)->>'state', ((r::json)->>'isError')::boolean IS TRUE,
         ((r::json)->'approval'->>'required')::boolean, 2000 + n, 3000 + n
       FROM unnest($2::text[]) WITH ORDINALITY AS u(r, n)`,
      [id, calls.map((c) => JSON.stringify(c))],
    );
    const foreignKeys = () =>
      adminQuery<{ table: string }>(
        `SELECT conrelid::regclass::text AS table FROM pg_constraint
         WHERE contype = 'f' AND connamespace = $1::regnamespace ORDER BY 1`,
        [old],
      );
    expect((await foreignKeys()).map((row) => row.table)).toHaveLength(5);

    const upgraded = open({ schema: old });
    expect(await upgraded.loadMessages(id)).toEqual(messages);
    const [version] = await adminQuery<{ version: number }>(
      `SELECT version FROM ${s}.kode_schema_version WHERE component = 'agent'`,
    );
    expect(version?.version).toBe(AGENT_SCHEMA_VERSION);
    expect((await foreignKeys()).map((row) => row.table.replace(/^.*\./, ''))).toEqual([
      'kode_agent_documents',
      'kode_agent_records',
      'kode_snapshots',
    ]);
    const indexes = await adminQuery<{ name: string }>(
      `SELECT indexname AS name FROM pg_indexes
       WHERE schemaname = $1 AND tablename IN ('kode_messages', 'kode_tool_calls') ORDER BY 1`,
      [old],
    );
    expect(indexes.map((row) => row.name)).toEqual([
      'kode_messages_by_content_type',
      'kode_messages_by_created',
      'kode_messages_by_role',
      'kode_messages_pkey',
      'kode_tool_calls_by_approval',
      'kode_tool_calls_by_created',
      'kode_tool_calls_by_error',
      'kode_tool_calls_by_name',
      'kode_tool_calls_by_state',
      'kode_tool_calls_by_updated',
      'kode_tool_calls_pkey',
    ]);
    // The same definitions (keys, partial predicates) as a schema created at version 2.
    await store.loadInfo('migrate-first');
    const definitions = async (schema: string) =>
      (
        await adminQuery<{ name: string; definition: string }>(
          `SELECT indexname AS name, indexdef AS definition FROM pg_indexes
           WHERE schemaname = $1 AND tablename LIKE 'kode\\_%' ORDER BY 1`,
          [schema],
        )
      ).map(
        (row) =>
          `${row.name}: ${row.definition.replaceAll(pg.escapeIdentifier(schema), 'S').replaceAll(schema, 'S')}`,
      );
    expect(await definitions(old)).toEqual(await definitions(place.schema));
    expect(await upgraded.queryMessages({ role: 'assistant' })).toEqual([messages[2]]);
    expect(await upgraded.queryMessages({ role: 'system' })).toEqual([messages[0]]);
    expect((await upgraded.queryToolCalls({ state: 'FAILED' })).map((r) => r.id)).toEqual(['call-1']);
    expect((await upgraded.queryToolCalls({ state: 'COMPLETED' })).map((r) => r.id)).toEqual(['call-2']);
    expect((await upgraded.queryToolCalls({ isError: true })).map((r) => r.id)).toEqual(['call-1']);
    expect((await upgraded.queryToolCalls({ isError: false })).map((r) => r.id)).toEqual(['call-2']);
    expect((await upgraded.queryToolCalls({ hasApproval: true })).map((r) => r.id)).toEqual(['call-2']);
    expect((await upgraded.queryToolCalls({ hasApproval: false })).map((r) => r.id)).toEqual(['call-1']);
    expect((await upgraded.queryToolCalls({ agentId: id, sortOrder: 'asc' })).map((r) => r.id)).toEqual([
      'call-1',
      'call-2',
    ]);
    await upgraded.saveMessages(id, [...messages, text('after the upgrade')]);
    expect(await upgraded.loadMessages(id)).toHaveLength(4);
    await upgraded.delete(id);
    const left = await adminQuery<{ n: number }>(
      `SELECT (SELECT count(*) FROM ${s}.kode_messages) + (SELECT count(*) FROM ${s}.kode_tool_calls) AS n`,
    );
    expect(Number(left[0]?.n)).toBe(0);
  });

  it('leaves no messages or tool calls of an agent deleted while it was being saved', async () => {
    const saver = open();
    const deleter = open();
    for (let round = 0; round < 20; round++) {
      const id = agentId('save-delete-race');
      await saver.saveMessages(id, [text('first')]);
      const conversation = Array.from({ length: round + 2 }, (_, i) => text(`message ${i}`));
      await Promise.allSettled([
        saver.saveMessages(id, conversation),
        saver.saveToolCallRecords(id, [toolCall(`call-${round}`)]),
        deleter.delete(id),
      ]);
      const rows = await adminQuery<{ n: number }>(
        `SELECT (SELECT count(*) FROM ${pg.escapeIdentifier(place.schema)}.kode_messages WHERE agent_id = $1)
           + (SELECT count(*) FROM ${pg.escapeIdentifier(place.schema)}.kode_tool_calls WHERE agent_id = $1) AS n`,
        [id],
      );
      if (!(await deleter.exists(id))) expect(Number(rows[0]?.n)).toBe(0);
      else expect((await deleter.checkConsistency(id)).issues).toEqual([]);
    }
  });

  // ---- the SDK's hot paths ----------------------------------------------

  it('saves a growing conversation in one statement that carries only the new messages', async () => {
    const { pool, statements } = recordingPool();
    const recorded = new PostgresStore({ pool, schema: place.schema });
    try {
      const id = agentId('incremental');
      const conversation: Message[] = [];
      for (let i = 0; i < 30; i++) conversation.push(text(`message ${i}`));
      await recorded.saveMessages(id, conversation);
      conversation.push(text('one more'));
      statements.length = 0;
      await recorded.saveMessages(id, conversation);
      expect(statements).toHaveLength(1);
      const sent = JSON.stringify((statements[0] as RecordedStatement).values);
      expect(sent).toContain('one more');
      expect(sent).not.toContain('message 29');

      // A change in the middle rewrites from there on, still in one statement.
      conversation[28] = text('edited');
      statements.length = 0;
      await recorded.saveMessages(id, conversation);
      expect(statements).toHaveLength(1);
      expect(await recorded.loadMessages(id)).toEqual(conversation);

      // Shrinking works too.
      statements.length = 0;
      await recorded.saveMessages(id, conversation.slice(0, 5));
      expect(statements).toHaveLength(1);
      expect(await recorded.loadMessages(id)).toEqual(conversation.slice(0, 5));
    } finally {
      await recorded.close();
      await pool.end();
    }
  });

  it("saves a new agent's first messages and tool calls in one statement each, and falls back when the list exists", async () => {
    const { pool, statements } = recordingPool();
    const recorded = new PostgresStore({ pool, schema: place.schema });
    try {
      await recorded.loadInfo('migrate-first');
      const id = agentId('first-save');
      statements.length = 0;
      await recorded.saveMessages(id, [text('a'), text('b')]);
      await recorded.saveToolCallRecords(id, [toolCall('c1')]);
      expect(statements).toHaveLength(2);
      expect(await recorded.loadMessages(id)).toEqual([text('a'), text('b')]);
      expect((await recorded.loadToolCallRecords(id)).map((r) => r.id)).toEqual(['c1']);

      // An agent registered by other data (revision 0, no list) takes the one statement too.
      const registered = agentId('first-save-registered');
      await recorded.saveInfo(registered, info(registered));
      statements.length = 0;
      await recorded.saveMessages(registered, [text('x')]);
      expect(statements).toHaveLength(1);

      // A list another store object wrote: the bet is lost, nothing is written
      // by it, and the locked path saves on top of what is stored.
      const peer = open();
      const existing = agentId('first-save-existing');
      await peer.saveMessages(existing, [text('one'), text('two'), text('three')]);
      statements.length = 0;
      await recorded.saveMessages(existing, [text('one'), text('2')]);
      expect(statements.map((st) => st.text.trim().split(/\s+/)[0])).toEqual([
        'WITH',
        'BEGIN',
        'INSERT',
        'SELECT',
        'WITH',
        'COMMIT',
      ]);
      expect(await peer.loadMessages(existing)).toEqual([text('one'), text('2')]);
      expect((await peer.checkConsistency(existing)).issues).toEqual([]);
    } finally {
      await recorded.close();
      await pool.end();
    }
  });

  it('keeps one whole list when two store objects save the first list of one agent at once', async () => {
    const first = open();
    const second = open();
    for (let round = 0; round < 10; round++) {
      const id = agentId('first-save-race');
      const mine = Array.from({ length: 5 }, (_, i) => text(`first ${i}`));
      const theirs = Array.from({ length: 3 }, (_, i) => text(`second ${i}`));
      await Promise.all([first.saveMessages(id, mine), second.saveMessages(id, theirs)]);
      const stored = await first.loadMessages(id);
      expect([mine, theirs]).toContainEqual(stored);
      // Each store object's next save builds on what is really stored.
      await first.saveMessages(id, [...stored, text('next')]);
      expect(await second.loadMessages(id)).toEqual([...stored, text('next')]);
    }
  });

  it('notices a list another store object wrote and saves on top of what is really stored', async () => {
    const peer = open();
    const id = agentId('stale-cache');
    await store.saveMessages(id, [text('a'), text('b')]);
    await peer.saveMessages(id, [text('peer')]);
    await store.saveMessages(id, [text('a'), text('b'), text('c')]);
    expect(await peer.loadMessages(id)).toEqual([text('a'), text('b'), text('c')]);
    await store.delete(id);
    await peer.saveToolCallRecords(id, [toolCall('x')]);
    await store.saveToolCallRecords(id, [toolCall('x'), toolCall('y')]);
    expect((await peer.loadToolCallRecords(id)).map((r) => r.id)).toEqual(['x', 'y']);
  });

  it('keeps first-saved times when the conversation is saved again', async () => {
    const id = agentId('first-saved');
    await store.saveMessages(id, [text('old')]);
    const rows = await adminQuery<{ created_at_ms: number }>(
      `SELECT created_at_ms FROM ${pg.escapeIdentifier(place.schema)}.kode_messages WHERE agent_id = $1`,
      [id],
    );
    const firstSaved = rows[0]?.created_at_ms as number;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await store.saveMessages(id, [text('old'), text('new')]);
    const found = await store.queryMessages({ agentId: id, createdAfter: firstSaved });
    expect(found).toEqual([text('new')]);
  });

  it('batches un-awaited appends into few INSERTs, in call order, and streams reads page by page', async () => {
    const { pool, statements } = recordingPool();
    const recorded = new PostgresStore({ pool, schema: place.schema });
    try {
      const id = agentId('events');
      await recorded.saveInfo(id, info(id)); // migrate before counting
      statements.length = 0;
      const timelines: Timeline[] = Array.from({ length: 700 }, (_, i) => ({
        cursor: i,
        // Reused seqs: order must come from the append order, never from seq.
        bookmark: { seq: i % 100, timestamp: i },
        event: { channel: i % 3 === 0 ? 'monitor' : 'progress', type: 'text_chunk', step: 1, delta: `${i}` },
      })) as Timeline[];
      await Promise.all(timelines.map((t) => recorded.appendEvent(id, t)));
      const inserts = statements.filter((s) => s.text.includes('INSERT INTO'));
      expect(inserts.length).toBeGreaterThanOrEqual(1);
      expect(inserts.length).toBeLessThan(10);

      statements.length = 0;
      const all = await collect(recorded.readEvents(id));
      expect(all.map((t) => t.cursor)).toEqual(timelines.map((t) => t.cursor));
      // 700 entries in pages (a small first one, then as many as the byte bound
      // allows, at most 4096): the stream is never read in one go.
      const pages = statements.filter((s) => s.text.includes('ORDER BY id LIMIT'));
      expect(pages.map((s) => s.values.at(-2))).toEqual([16, 4096]);

      const since = await collect(
        recorded.readEvents(id, { since: { seq: 97, timestamp: 0 }, channel: 'monitor' }),
      );
      expect(since.map((t) => t.cursor)).toEqual(
        timelines.filter((t) => t.bookmark.seq > 97 && t.event.channel === 'monitor').map((t) => t.cursor),
      );

      // Breaking out of a read early is harmless.
      for await (const first of recorded.readEvents(id)) {
        expect(first.cursor).toBe(0);
        break;
      }

      // Entries are handed out from the fetched page one by one, each after a
      // closed check: a store closed mid-page ends the read at the next entry.
      const reader = recorded.readEvents(id)[Symbol.asyncIterator]();
      expect((await reader.next()).value?.cursor).toBe(0);
      expect((await reader.next()).value?.cursor).toBe(1);
      await recorded.close();
      await expect(reader.next()).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
      expect(await reader.next()).toEqual({ value: undefined, done: true });
    } finally {
      await recorded.close();
      await pool.end();
    }
  });

  it('reads a never-analysed event table page by page through the index in id order, never sorting the rest of the stream', async () => {
    const fresh = place.also(`${place.schema}_burst`);
    const { pool, statements } = recordingPool();
    const recorded = new PostgresStore({ pool, schema: fresh });
    try {
      await recorded.loadInfo('migrate-first');
      const events = `${pg.escapeIdentifier(fresh)}.kode_events`;
      // A burst appended and read at once: autovacuum must not analyse the table behind the test's back.
      await adminQuery(`ALTER TABLE ${events} SET (autovacuum_enabled = false)`);
      await adminQuery(`
        INSERT INTO ${events} (agent_id, seq, channel_key, timeline_json)
        SELECT 'burst-' || (i / 3000), i % 3000, (ARRAY['progress', 'monitor', 'control'])[i % 3 + 1],
          '{"cursor":' || i || ',"delta":"' || repeat('x', 200) || '"}'
        FROM generate_series(0, 11999) AS i ORDER BY i`);
      statements.length = 0;
      const reads: Array<{ options: ReadEventsOptions; expected: number }> = [
        { options: {}, expected: 3000 },
        { options: { since: { seq: 1500, timestamp: 0 } }, expected: 1499 },
        { options: { channel: 'progress' }, expected: 1000 },
        { options: { since: { seq: 2990, timestamp: 0 }, channel: 'monitor' }, expected: 3 },
      ];
      for (const { options, expected } of reads) {
        const read = await collect(recorded.readEvents('burst-1', options));
        expect(read).toHaveLength(expected);
        expect(read.map((t) => t.cursor)).toEqual([...read.map((t) => t.cursor)].sort((a, b) => a - b));
      }
      const [stats] = await adminQuery<{ analyzed: boolean }>(
        `SELECT reltuples >= 0 AS analyzed FROM pg_class WHERE oid = $1::regclass`,
        [events],
      );
      expect(stats?.analyzed).toBe(false);

      const planned = statements.filter((st) => /^\s*SELECT/i.test(st.text));
      expect(planned.length).toBeGreaterThan(8);
      const client = await pool.connect();
      try {
        for (const statement of planned) {
          const plan = await client.query({
            text: `EXPLAIN (FORMAT JSON) ${statement.text}`,
            values: statement.values,
          });
          const root = (plan.rows[0] as { 'QUERY PLAN': Array<{ Plan: PlanNode }> })['QUERY PLAN'][0]?.Plan;
          const nodes = planNodes(root);
          expect(
            nodes.filter((type) => type === 'Sort' || type === 'Seq Scan'),
            `${statement.text}\n${nodes.join(' > ')}`,
          ).toEqual([]);
        }
      } finally {
        client.release();
      }
    } finally {
      await recorded.close();
      await pool.end();
    }
  });

  it("answers aggregateStats and one agent's queries on never-analysed tables by primary-key lookups, never starting parallel workers", async () => {
    const fresh = place.also(`${place.schema}_fleet`);
    const { pool, statements } = recordingPool();
    const recorded = new PostgresStore({ pool, schema: fresh });
    try {
      await recorded.loadInfo('migrate-first');
      const s = pg.escapeIdentifier(fresh);
      for (const table of ['kode_agents', 'kode_messages', 'kode_tool_calls', 'kode_snapshots']) {
        await adminQuery(`ALTER TABLE ${s}.${table} SET (autovacuum_enabled = false)`);
      }
      // A fleet populated a moment ago: 2,000 agents, 20 messages and 5 tool calls each.
      await adminQuery(
        `INSERT INTO ${s}.kode_agents (agent_id) SELECT 'fleet-' || i FROM generate_series(1, 2000) AS i`,
      );
      await adminQuery(`
        INSERT INTO ${s}.kode_messages (agent_id, position, message_json, role_key, content_types, created_at_ms)
        SELECT 'fleet-' || (i / 20 + 1), i % 20, '{"pad":"' || repeat('x', 900) || '"}', 'user', ARRAY['text'], i
        FROM generate_series(0, 39999) AS i`);
      await adminQuery(`
        INSERT INTO ${s}.kode_tool_calls (agent_id, position, tool_call_key, record_json, name_key, state_key,
          is_error, has_approval, created_at_ms, updated_at_ms)
        SELECT 'fleet-' || (i / 5 + 1), i % 5, 'call-' || i, '{"pad":"' || repeat('y', 900) || '"}',
          (ARRAY['fs_read', 'bash_run'])[i % 5 / 3 + 1],
          (ARRAY['FAILED', 'COMPLETED'])[(i % 5 + 1) / 2 % 2 + 1], false, false, i, i
        FROM generate_series(0, 9999) AS i`);
      statements.length = 0;
      const stats = await recorded.aggregateStats('fleet-1000');
      expect(stats).toEqual({
        totalMessages: 20,
        totalToolCalls: 5,
        totalSnapshots: 0,
        avgMessagesPerSession: 20,
        toolCallsByName: { fs_read: 3, bash_run: 2 },
        toolCallsByState: { FAILED: 3, COMPLETED: 2 },
      });
      expect(Object.keys(stats.toolCallsByState ?? {})).toEqual(['FAILED', 'COMPLETED']);
      expect(statements).toHaveLength(1);
      const statement = statements[0] as RecordedStatement;
      const plan = await adminQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (FORMAT JSON) ${statement.text}`,
        statement.values,
      );
      const nodes = planNodes(plan[0]?.['QUERY PLAN'][0]?.Plan);
      expect(
        nodes.filter((type) => /Gather|Parallel/.test(type)),
        nodes.join(' > '),
      ).toEqual([]);

      // One agent's messages and tool calls come through the primary key, not
      // through a walk of a time-ordered index past every other agent's rows.
      statements.length = 0;
      expect(await recorded.queryMessages({ agentId: 'fleet-1000', limit: 5 })).toHaveLength(5);
      expect(await recorded.queryToolCalls({ agentId: 'fleet-1000', sortOrder: 'asc' })).toHaveLength(5);
      for (const query of statements) {
        const explained = await adminQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
          `EXPLAIN (FORMAT JSON) ${query.text}`,
          query.values,
        );
        const indexes = JSON.stringify(explained[0]?.['QUERY PLAN']).match(/"Index Name":"[^"]+"/g) ?? [];
        expect(indexes, query.text).toEqual([expect.stringMatching(/_pkey"$/)]);
      }
    } finally {
      await recorded.close();
      await pool.end();
    }
  });

  it('forks with a constant number of statements in one transaction, whatever the size', async () => {
    const { pool, statements } = recordingPool();
    const recorded = new PostgresStore({ pool, schema: place.schema });
    try {
      const id = agentId('fork');
      await recorded.saveInfo(id, info(id, { lineage: ['root'], messageCount: 40 }));
      await recorded.saveMessages(
        id,
        Array.from({ length: 40 }, (_, i) => text(`m${i}`)),
      );
      await recorded.saveToolCallRecords(id, [toolCall('call-1'), toolCall('call-2')]);
      await recorded.saveSnapshot(id, {
        id: 's1',
        messages: [],
        lastSfpIndex: 0,
        lastBookmark: { seq: 0, timestamp: 0 },
        createdAt: 'x',
      });
      await recorded.saveSnapshot(id, {
        id: 's0',
        messages: [],
        lastSfpIndex: 0,
        lastBookmark: { seq: 0, timestamp: 0 },
        createdAt: 'y',
      });
      statements.length = 0;
      const forks = await recorded.batchFork(id, 25);
      expect(statements.map((s) => s.text.trim().split(/\s+/)[0])).toEqual([
        'BEGIN',
        'SELECT',
        'WITH',
        'COMMIT',
      ]);
      expect(forks).toHaveLength(25);
      const last = forks[24] as string;
      expect(await recorded.loadInfo(last)).toEqual(info(last, { lineage: ['root', id], messageCount: 40 }));
      expect(await recorded.loadMessages(last)).toHaveLength(40);
      expect((await recorded.loadToolCallRecords(last)).map((r) => r.id)).toEqual(['call-1', 'call-2']);
      expect((await recorded.listSnapshots(last)).map((s) => s.id)).toEqual(['s1', 's0']);
      await expect(recorded.batchFork(agentId('missing'), 1)).rejects.toMatchObject({
        code: 'KODE_NOT_FOUND',
      });
    } finally {
      await recorded.close();
      await pool.end();
    }
  });

  it('serves every filter of every statement it sends from an index', async () => {
    const s = pg.escapeIdentifier(place.schema);
    await store.loadInfo('migrate-first');
    // A data set large enough for plans to matter.
    await adminQuery(`
      INSERT INTO ${s}.kode_agents (agent_id, info_json, template_key, user_key, created_at_ms, updated_at_ms, message_count)
      SELECT 'bulk-' || i, '{}', 'tpl-' || (i % 20), 'user-' || (i % 50), i * 1000.0, i * 1000.0, i % 100
      FROM generate_series(1, 3000) AS i`);
    await adminQuery(`
      INSERT INTO ${s}.kode_messages (agent_id, position, message_json, role_key, content_types, created_at_ms)
      SELECT 'bulk-' || (i % 3000 + 1), i / 3000, '{"role":"user","content":[]}',
        CASE WHEN i % 3 = 0 THEN 'assistant' ELSE 'user' END,
        CASE WHEN i % 500 = 0 THEN ARRAY['text', 'tool_use'] ELSE ARRAY['text'] END, i * 10.0
      FROM generate_series(0, 59999) AS i`);
    await adminQuery(`
      INSERT INTO ${s}.kode_tool_calls (agent_id, position, tool_call_key, record_json, name_key, state_key,
        is_error, has_approval, created_at_ms, updated_at_ms)
      SELECT 'bulk-' || (i % 3000 + 1), i / 3000, 'call-' || i, '{}', 'tool-' || (i % 30),
        (ARRAY['COMPLETED','FAILED','DENIED','PENDING'])[i % 4 + 1], i % 10 = 0, i % 7 <> 0, i * 10.0, i * 11.0
      FROM generate_series(0, 59999) AS i`);
    await adminQuery(`
      INSERT INTO ${s}.kode_events (agent_id, seq, channel_key, timeline_json)
      SELECT 'bulk-' || (i % 3000 + 1), i / 3000, (ARRAY['progress','monitor','control'])[i % 3 + 1], '{}'
      FROM generate_series(0, 119999) AS i`);
    await adminQuery(`ANALYZE ${s}.kode_agents, ${s}.kode_messages, ${s}.kode_tool_calls, ${s}.kode_events`);

    const { pool, statements } = recordingPool();
    const recorded = new PostgresStore({ pool, schema: place.schema });
    try {
      const id = 'bulk-7';
      await recorded.loadInfo(id); // migrations happen before recording
      statements.length = 0;
      const since = { seq: 3, timestamp: 0 };
      await recorded.saveMessages(id, [text('one')]);
      await recorded.saveMessages(id, [text('one'), text('two')]);
      await recorded.loadMessages(id);
      await recorded.saveToolCallRecords(id, [toolCall('a')]);
      await recorded.loadToolCallRecords(id);
      await collect(recorded.readEvents(id));
      await collect(recorded.readEvents(id, { since }));
      await collect(recorded.readEvents(id, { channel: 'monitor' }));
      await collect(recorded.readEvents(id, { since, channel: 'control' }));
      await recorded.exists(id);
      await recorded.list('bulk-1');
      await recorded.loadSnapshot(id, 's');
      await recorded.listSnapshots(id);
      await recorded.loadHistoryWindows(id);
      await recorded.loadTodos(id);
      await recorded.aggregateStats(id);
      await recorded.checkConsistency(id);
      const window = { startDate: 1000, endDate: 500_000 };
      for (const order of ['asc', 'desc'] as const) {
        await recorded.querySessions({ sortOrder: order });
        await recorded.querySessions({ templateId: 'tpl-3', sortOrder: order });
        await recorded.querySessions({ userId: 'user-3', sortOrder: order });
        await recorded.querySessions({ agentId: id, sortOrder: order });
        await recorded.querySessions({ ...window, sortOrder: order });
        await recorded.querySessions({ sortBy: 'updated_at', sortOrder: order });
        await recorded.querySessions({ sortBy: 'message_count', sortOrder: order });
        await recorded.queryMessages({ sortOrder: order });
        await recorded.queryMessages({ agentId: id, sortOrder: order });
        await recorded.queryMessages({ role: 'assistant', sortOrder: order });
        await recorded.queryMessages({ contentType: 'tool_use', sortOrder: order });
        await recorded.queryMessages({ ...window, sortOrder: order });
        await recorded.queryToolCalls({ sortOrder: order });
        await recorded.queryToolCalls({ agentId: id, sortOrder: order });
        await recorded.queryToolCalls({ toolName: 'tool-3', sortOrder: order });
        await recorded.queryToolCalls({ state: 'FAILED', sortOrder: order });
        await recorded.queryToolCalls({ isError: true, sortOrder: order });
        await recorded.queryToolCalls({ hasApproval: false, sortOrder: order });
        await recorded.queryToolCalls({ ...window, sortOrder: order });
        await recorded.queryToolCalls({ sortBy: 'updated_at', sortOrder: order });
      }
      const release = await recorded.acquireAgentLock(id, 1000);
      await release();
      await recorded.delete('bulk-9');

      const explained = statements.filter((st) => /^\s*(SELECT|WITH|UPDATE|DELETE|INSERT)/i.test(st.text));
      expect(explained.length).toBeGreaterThan(50);
      const client = await pool.connect();
      try {
        // With sequential scans priced out, a statement still planned as a
        // sequential scan, or as a walk over an index that filters rows the
        // index cannot select (a Filter with no Index Cond), has no index for
        // its filter.
        await client.query('SET enable_seqscan = off');
        for (const statement of explained) {
          const plan = await client.query({
            text: `EXPLAIN (FORMAT JSON) ${statement.text}`,
            values: statement.values,
          });
          const root = (plan.rows[0] as { 'QUERY PLAN': Array<{ Plan: PlanNode }> })['QUERY PLAN'][0]?.Plan;
          const unserved = scansWithoutIndex(root);
          expect(unserved, `no index for:\n${statement.text}\n${JSON.stringify(unserved, null, 1)}`).toEqual(
            [],
          );
        }
      } finally {
        client.release();
      }
    } finally {
      await recorded.close();
      await pool.end();
    }
  });

  it('reports rows corrupted behind its back as CorruptDataError and in checkConsistency', async () => {
    const id = agentId('corrupt');
    const s = pg.escapeIdentifier(place.schema);
    await store.saveInfo(id, info(id, { messageCount: 1 }));
    await store.saveMessages(id, [text('fine')]);
    await store.appendEvent(id, {
      cursor: 1,
      bookmark: { seq: 1, timestamp: 1 },
      event: { channel: 'monitor', type: 'state_changed', state: 'READY' },
    });
    await adminQuery(`UPDATE ${s}.kode_agents SET info_json = '{"agentId": ' WHERE agent_id = $1`, [id]);
    await adminQuery(`UPDATE ${s}.kode_events SET timeline_json = 'not json' WHERE agent_id = $1`, [id]);
    await expect(store.loadInfo(id)).rejects.toMatchObject({ code: 'KODE_CORRUPT', operation: 'loadInfo' });
    await expect(collect(store.readEvents(id))).rejects.toMatchObject({ code: 'KODE_CORRUPT' });
    const report = await store.checkConsistency(id);
    expect(report.consistent).toBe(false);
    expect(report.issues.join('\n')).toMatch(/info is not valid JSON/);
    expect(report.issues.join('\n')).toMatch(/does not hold a JSON object/);
  });

  it('lists by prefix literally, including prefixes at the edges of Unicode', async () => {
    const base = agentId('edge');
    const ids = [
      `${base}%`,
      `${base}_x`,
      `${base}\u{10FFFF}`,
      `${base}\u{10FFFF}a`,
      `${base}\uD7FF`,
      `${base}\uE000`,
    ];
    for (const id of ids) await store.saveInfo(id, info(id));
    expect(await store.list(`${base}%`)).toEqual([`${base}%`]);
    expect(await store.list(`${base}\u{10FFFF}`)).toEqual([`${base}\u{10FFFF}`, `${base}\u{10FFFF}a`]);
    expect(await store.list(`${base}\uD7FF`)).toEqual([`${base}\uD7FF`]);
    // Code-point order: U+D7FF < U+E000 < U+10FFFF (UTF-16 order would put the astral one first).
    expect(await store.list(base)).toEqual([...ids].sort(compareCodePoints));
    expect(await store.list(`${base}\u0000`)).toEqual([]);
    expect(await store.list(`${base}\uD800`)).toEqual([]);
    await expect(store.list(42 as never)).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
  });

  // ---- faults -------------------------------------------------------------
  it('retries a write whose agent row a concurrent delete removed, registering the agent again', async () => {
    const applicationName = `kode-store-test-fk-${process.pid}`;
    const writer = open({ connection: { connectionString: place.url, max: 2, applicationName } });
    const id = agentId('raced');
    await writer.saveInfo(id, info(id));
    const deleter = new pg.Client({ connectionString: place.url });
    await deleter.connect();
    try {
      const agents = `${pg.escapeIdentifier(place.schema)}.kode_agents`;
      // The deleter holds the agent row, so the write's foreign-key check waits on it...
      await deleter.query('BEGIN');
      await deleter.query(`SELECT 1 FROM ${agents} WHERE agent_id = $1 FOR UPDATE`, [id]);
      const todos = { todos: [], version: 7, updatedAt: 1 };
      const saving = writer.saveTodos(id, todos);
      for (let waited = 0; ; waited++) {
        const blocked = await adminQuery(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [applicationName],
        );
        if (blocked.length > 0) break;
        if (waited > 500) throw new Error('the write never waited on the agent row');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // ...then deletes the row and commits: the check fails, and the write is retried.
      await deleter.query(`DELETE FROM ${agents} WHERE agent_id = $1`, [id]);
      await deleter.query('COMMIT');
      await saving;
      expect(await writer.loadTodos(id)).toEqual(todos);
      expect(await writer.exists(id)).toBe(true);
      expect(await writer.loadInfo(id)).toBeUndefined();
    } finally {
      await deleter.end();
    }
  });

  it('survives its connections being terminated by the server mid-run, losing nothing acknowledged', async () => {
    const applicationName = `kode-store-test-fault-${process.pid}`;
    const victim = open({
      connection: { connectionString: place.url, max: 4, applicationName },
    });
    const id = agentId('fault');
    const acknowledgedEvents: number[] = [];
    const acknowledgedMessages: number[] = [];
    const failures: unknown[] = [];
    const conversation: Message[] = [];
    const terminations: Array<Promise<number>> = [];
    for (let round = 0; round < 60; round++) {
      if (round === 20 || round === 40) {
        // Not awaited: the server kills the connections while this round's operations are in flight.
        terminations.push(
          adminQuery<{ killed: boolean }>(
            `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`,
            [applicationName],
          ).then((rows) => rows.length),
        );
      }
      conversation.push(text(`round ${round}`));
      const snapshot = [...conversation];
      const appends = [0, 1, 2].map((k) =>
        victim
          .appendEvent(id, {
            cursor: round * 3 + k,
            bookmark: { seq: round * 3 + k, timestamp: 0 },
            event: { channel: 'progress', type: 'done', step: round, reason: 'completed' },
          } as Timeline)
          .then(
            () => acknowledgedEvents.push(round * 3 + k),
            (error) => failures.push(error),
          ),
      );
      const save = victim.saveMessages(id, snapshot).then(
        () => acknowledgedMessages.push(snapshot.length),
        (error) => failures.push(error),
      );
      await Promise.all([...appends, save]);
    }
    const terminated = (await Promise.all(terminations)).reduce((a, b) => a + b, 0);
    expect(terminated).toBeGreaterThan(0);
    // Whatever failed, failed as a typed error, never as a crash.
    for (const failure of failures) expect(failure).toMatchObject({ code: 'KODE_CONNECTION' });
    // The operations after the terminations succeeded.
    expect(acknowledgedMessages).toContain(60);
    expect(acknowledgedEvents).toContain(179);
    const stored = (await collect(victim.readEvents(id))).map((t) => t.cursor);
    for (const cursor of acknowledgedEvents) expect(stored).toContain(cursor);
    expect(stored).toEqual([...stored].sort((a, b) => a - b));
    expect(await victim.loadMessages(id)).toEqual(conversation);
  });

  it('rejects with ConnectionError when the server is unreachable, and the process lives on', async () => {
    const unreachable = new PostgresStore({
      connection: {
        host: '127.0.0.1',
        port: 1,
        user: 'nobody',
        password: 'secret-pw',
        connectionTimeoutMillis: 2000,
      },
    });
    stores.push(unreachable);
    const error = await unreachable.saveInfo('a', info('a')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KODE_CONNECTION', backend: 'postgres', operation: 'saveInfo' });
    expect(String((error as Error).message)).not.toContain('secret-pw');
    await expect(collect(unreachable.readEvents('a'))).rejects.toMatchObject({ code: 'KODE_CONNECTION' });
    await expect(unreachable.acquireAgentLock('a', 10)).rejects.toMatchObject({ code: 'KODE_CONNECTION' });
    const health = await unreachable.healthCheck();
    expect(health.healthy).toBe(false);
    expect(health.database.connected).toBe(false);
    expect(health.database.error).toBeTruthy();
    await unreachable.close();
  });

  it('recovers when the server comes back, including a store opened while it was away', async () => {
    const target = new URL(place.url);
    const sockets = new Set<Socket>();
    let server: Server | undefined;
    const start = (port: number) =>
      new Promise<number>((resolve) => {
        server = createServer((socket) => {
          const upstream = tcpConnect(Number(target.port || 5432), target.hostname);
          sockets.add(socket).add(upstream);
          socket.pipe(upstream).pipe(socket);
          const drop = () => {
            socket.destroy();
            upstream.destroy();
          };
          socket.on('error', drop).on('close', drop);
          upstream.on('error', drop).on('close', drop);
        });
        server.listen(port, '127.0.0.1', () => resolve((server?.address() as { port: number }).port));
      });
    const stop = () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        sockets.clear();
        server?.close(() => resolve());
      });

    const port = await start(0);
    await stop();
    const viaProxy = new URL(place.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(port);
    const late = open({
      connection: { connectionString: viaProxy.toString(), connectionTimeoutMillis: 2000 },
    });
    const id = agentId('recover');
    // Opened while the server is away: migrations fail, typed.
    await expect(late.saveInfo(id, info(id))).rejects.toMatchObject({ code: 'KODE_CONNECTION' });

    await start(port);
    await late.saveInfo(id, info(id));
    await late.saveMessages(id, [text('before the outage')]);

    await stop();
    await expect(late.loadMessages(id)).rejects.toMatchObject({ code: 'KODE_CONNECTION' });
    expect((await late.healthCheck()).database.connected).toBe(false);

    await start(port);
    expect(await late.loadMessages(id)).toEqual([text('before the outage')]);
    await late.saveMessages(id, [text('before the outage'), text('after')]);
    expect(await store.loadMessages(id)).toEqual([text('before the outage'), text('after')]);
    await late.close();
    await stop();
  });

  it('rejects every call after close() with StoreClosedError, and close() is idempotent', async () => {
    const closing = open();
    const id = agentId('closing');
    const pending = closing.appendEvent(id, {
      cursor: 1,
      bookmark: { seq: 1, timestamp: 1 },
      event: { channel: 'monitor', type: 'state_changed', state: 'READY' },
    });
    await closing.close();
    await pending;
    await closing.close();
    await expect(closing.loadInfo(id)).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    await expect(collect(closing.readEvents(id))).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    // The append made before close() was written.
    expect(await collect(store.readEvents(id))).toHaveLength(1);
  });

  it('keeps hybrid-mode events in files and everything else in the database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-pg-hybrid-'));
    try {
      const hybrid = open({ eventStorage: 'file', fileStoreBaseDir: dir });
      expect(hybrid.capabilities).toMatchObject({ fileEvents: true, durable: true });
      const unsynced = open({ eventStorage: 'file', fileStoreBaseDir: dir, fsync: false });
      expect(unsynced.capabilities.durable).toBe(false);
      expect(unsynced.capabilities.reasons?.durable).toContain('fsync');
      const id = agentId('hybrid');
      await hybrid.appendEvent(id, {
        cursor: 1,
        bookmark: { seq: 1, timestamp: 1 },
        event: { channel: 'monitor', type: 'state_changed', state: 'WORKING' },
      });
      expect(await hybrid.exists(id)).toBe(true);
      expect(await hybrid.list(id)).toEqual([id]);
      const rows = await adminQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(place.schema)}.kode_events WHERE agent_id = $1`,
        [id],
      );
      expect(rows[0]?.n).toBe(0);
      await hybrid.saveInfo(id, info(id, { lastBookmark: { seq: 1, timestamp: 1 } }));
      expect(await hybrid.checkConsistency(id)).toMatchObject({ consistent: true, issues: [] });
      // A fork copies lastBookmark but no events: that is not a missing file.
      const [fork] = await hybrid.batchFork(id, 1);
      expect((await hybrid.checkConsistency(fork as string)).issues).toEqual([]);

      // The files vanish behind the store's back: reported.
      for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
      const report = await hybrid.checkConsistency(id);
      expect(report.consistent).toBe(false);
      expect(report.issues.join('\n')).toContain('file is missing');

      await hybrid.delete(id);
      expect(await hybrid.exists(id)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describePostgres('PostgresStore healthCheck', () => {
  it('reports unhealthy, naming the schema, when the store tables were dropped under a running store', async () => {
    const schema = uniqueSchemaName('health');
    const store = await new PostgresStore({ connection: requirePostgresUrl(), schema }).open();
    try {
      expect((await store.healthCheck()).healthy).toBe(true);
      await dropSchema(schema);
      const health = await store.healthCheck();
      expect(health.healthy).toBe(false);
      expect(health.database.connected).toBe(true);
      expect(health.database.error).toContain(schema);
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });
});
