import { readFileSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, rm, stat, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import { loadBetterSqlite3 } from '../../../adapters/sqlite/sqlite-driver.js';
import {
  type BuiltQuery,
  eventPageQuery,
  listAgentsQuery,
  messageQuery,
  sessionQuery,
  toolCallQuery,
} from '../../../adapters/sqlite/sqlite-queries.js';
import { AGENT_SCHEMA_MIGRATIONS, latestVersion } from '../../../adapters/sqlite/sqlite-schema.js';
import { fixtureSample } from '../../../conformance/store/fixture-sample.js';
import {
  normalizeMessageFilters,
  normalizeSessionFilters,
  normalizeToolCallFilters,
} from '../../../src/agent/query-filters.js';
import { agentDirName } from '../../../src/hybrid/agent-path.js';
import type { Message, Timeline, ToolCallRecord } from '../../../src/types.js';
import { ChildScript } from '../../child/sqlite-child-process.js';
import { agentSchemaVersion } from '../../helpers/sqlite-files.js';

let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kode-sqlite-store-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh directory for one test. */
async function freshDir(): Promise<string> {
  const dir = join(root, `t${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function freshDbPath(): Promise<string> {
  return join(await freshDir(), 'agents.db');
}

/** Real messages written by the SDK, repeated to `count` and numbered so that no two are equal. */
function conversation(count: number, tag = 'm'): Message[] {
  const source = fixtureSample.agents.flatMap((agent) => agent.messages);
  return Array.from({ length: count }, (_, i) => ({
    ...structuredClone(source[i % source.length]!),
    metadata: { transport: 'provider' as const, content_blocks: [{ type: 'text', text: `${tag}-${i}` }] },
  }));
}

function toolCalls(count: number): ToolCallRecord[] {
  const source = fixtureSample.agents.flatMap((agent) => agent.toolCalls);
  return Array.from({ length: count }, (_, i) => ({
    ...structuredClone(source[i % source.length]!),
    id: `call-${i}`,
  }));
}

function timeline(seq: number, channel: 'progress' | 'monitor' | 'control' = 'progress'): Timeline {
  return {
    cursor: seq,
    bookmark: { seq, timestamp: 1_795_361_537_000 + seq },
    event: { channel, type: 'text_chunk', step: 1, delta: `chunk ${seq}` } as Timeline['event'],
  };
}

/**
 * Counts row writes on the store's own connection with TEMP triggers: the
 * store must use an injected database for this, since temporary triggers
 * belong to the connection that created them.
 */
function countRowWrites(
  db: Database.Database,
  table: string,
): () => Record<'insert' | 'update' | 'delete', number> {
  db.exec(`CREATE TEMP TABLE IF NOT EXISTS row_writes (tbl TEXT, kind TEXT)`);
  for (const kind of ['insert', 'update', 'delete']) {
    db.exec(
      `CREATE TEMP TRIGGER IF NOT EXISTS count_${table}_${kind} AFTER ${kind.toUpperCase()} ON main.${table} ` +
        `BEGIN INSERT INTO row_writes VALUES ('${table}', '${kind}'); END`,
    );
  }
  return () => {
    const counts = { insert: 0, update: 0, delete: 0 };
    for (const row of db
      .prepare('SELECT kind, count(*) AS n FROM row_writes WHERE tbl = ? GROUP BY kind')
      .all(table) as Array<{ kind: keyof typeof counts; n: number }>) {
      counts[row.kind] = row.n;
    }
    db.prepare('DELETE FROM row_writes WHERE tbl = ?').run(table);
    return counts;
  };
}

/** A store over an injected connection, opened and migrated, with the connection for inspection. */
async function storeWithConnection(options: { durability?: 'full' | 'normal' } = {}) {
  const path = await freshDbPath();
  const db = new Database(path);
  const store = new SqliteStore({ path, database: db, ...options });
  await store.list();
  return { store, db, path };
}

describe('SqliteStore: incremental saves', () => {
  it('writes two message rows when a 1,000-message conversation grows by two', async () => {
    const { store, db } = await storeWithConnection();
    const messages = conversation(1002);
    await store.saveMessages('long', messages.slice(0, 1000));
    const writes = countRowWrites(db, 'messages');
    await store.saveMessages('long', messages);
    expect(writes()).toEqual({ insert: 2, update: 0, delete: 0 });
    expect(await store.loadMessages('long')).toEqual(messages);
    await store.close();
  });

  it('writes nothing when the same conversation is saved again', async () => {
    const { store, db } = await storeWithConnection();
    const messages = conversation(50);
    await store.saveMessages('same', messages);
    const writes = countRowWrites(db, 'messages');
    await store.saveMessages('same', structuredClone(messages));
    expect(writes()).toEqual({ insert: 0, update: 0, delete: 0 });
    await store.close();
  });

  it('rewrites only the tool-call records that changed', async () => {
    const { store, db } = await storeWithConnection();
    const records = toolCalls(300);
    await store.saveToolCallRecords('calls', records);
    const writes = countRowWrites(db, 'tool_calls');
    const next = structuredClone(records);
    next[299] = { ...next[299]!, state: 'COMPLETED', updatedAt: next[299]!.updatedAt + 1 };
    next.push({ ...structuredClone(records[0]!), id: 'call-new' });
    await store.saveToolCallRecords('calls', next);
    expect(writes()).toEqual({ insert: 1, update: 1, delete: 0 });
    expect(await store.loadToolCallRecords('calls')).toEqual(next);
    await store.close();
  });

  it('deletes the stored tail when the conversation gets shorter', async () => {
    const { store, db } = await storeWithConnection();
    const messages = conversation(20);
    await store.saveMessages('shrinks', messages);
    const writes = countRowWrites(db, 'messages');
    await store.saveMessages('shrinks', messages.slice(0, 15));
    expect(writes()).toEqual({ insert: 0, update: 0, delete: 5 });
    expect(await store.loadMessages('shrinks')).toEqual(messages.slice(0, 15));
    await store.close();
  });

  it('re-indexes the content types of messages a save rewrites', async () => {
    const { store } = await storeWithConnection();
    const all = conversation(40);
    const usesTool = (m: Message) => m.content.some((block) => block.type === 'tool_use');
    const [u1, u2] = all.filter(usesTool);
    const [t1, t2, t3] = all.filter((m) => !usesTool(m));
    await store.saveMessages('rewrite', [t1!, u1!, t2!, u2!]);
    // Positions 1 and 2 now hold other messages, and the list is one shorter.
    await store.saveMessages('rewrite', [t1!, t3!, u2!]);
    expect(
      await store.queryMessages({ agentId: 'rewrite', contentType: 'tool_use', sortOrder: 'asc' }),
    ).toEqual([u2]);
    expect(await store.queryMessages({ contentType: 'tool_use', sortOrder: 'asc' })).toEqual([u2]);
    await store.close();
  });

  it('notices a save made through another store object on the same file', async () => {
    const path = await freshDbPath();
    const first = new SqliteStore(path);
    const second = new SqliteStore(path);
    const [a, b, c, d] = conversation(4);
    await first.saveMessages('shared', [a!, b!]);
    await second.saveMessages('shared', [a!, c!]);
    // `first` still caches [a, b]; trusting it would keep b and append d after it.
    await first.saveMessages('shared', [a!, c!, d!]);
    expect(await second.loadMessages('shared')).toEqual([a, c, d]);
    await second.delete('shared');
    await second.saveMessages('shared', [b!]);
    await first.saveMessages('shared', [b!, a!]);
    expect(await second.loadMessages('shared')).toEqual([b, a]);
    await first.close();
    await second.close();
  });

  it('keeps the first-saved time of messages that are saved again', async () => {
    const { store, db } = await storeWithConnection();
    const messages = conversation(3);
    await store.saveMessages('times', messages.slice(0, 2));
    const before = db
      .prepare('SELECT created_at_ms FROM messages WHERE agent_id = ? ORDER BY position')
      .all('times');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await store.saveMessages('times', messages);
    const after = db
      .prepare('SELECT created_at_ms FROM messages WHERE agent_id = ? ORDER BY position')
      .all('times') as Array<{ created_at_ms: number }>;
    expect(after.slice(0, 2)).toEqual(before);
    expect(after[2]!.created_at_ms).toBeGreaterThan((before[1] as { created_at_ms: number }).created_at_ms);
    await store.close();
  });
});

describe('SqliteStore: bad input', () => {
  const cyclic: Record<string, unknown> = { type: 'text', text: 'loop' };
  cyclic.self = cyclic;
  const bad: Array<[string, unknown]> = [
    ['a function', { type: 'text', text: 'x', render: () => 'x' }],
    ['a BigInt', { type: 'text', text: 'x', tokens: 10n }],
    ['a cycle', cyclic],
  ];

  for (const [what, block] of bad) {
    it(`refuses a message holding ${what} with a ValidationError and leaves the conversation unchanged`, async () => {
      const { store, db } = await storeWithConnection();
      const stored = conversation(10);
      await store.saveMessages('bad-input', stored);
      const writes = countRowWrites(db, 'messages');
      const next = [...stored, { role: 'user', content: [block] } as Message];
      const error = await store.saveMessages('bad-input', next).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect(error).toMatchObject({
        code: 'KODE_VALIDATION',
        operation: 'saveMessages',
        agentId: 'bad-input',
      });
      expect(writes()).toEqual({ insert: 0, update: 0, delete: 0 });
      expect(await store.loadMessages('bad-input')).toEqual(stored);
      await store.close();
    });
  }

  it('refuses a tool-call record holding a BigInt and keeps the stored records', async () => {
    const { store } = await storeWithConnection();
    const stored = toolCalls(3);
    await store.saveToolCallRecords('bad-call', stored);
    const next = [...stored, { ...structuredClone(stored[0]!), id: 'x', result: 1n }];
    await expect(store.saveToolCallRecords('bad-call', next)).rejects.toMatchObject({
      code: 'KODE_VALIDATION',
    });
    expect(await store.loadToolCallRecords('bad-call')).toEqual(stored);
    await store.close();
  });

  it('refuses lists that are not arrays and info that is not an object', async () => {
    const { store } = await storeWithConnection();
    await expect(store.saveMessages('x', 'hello' as never)).rejects.toBeInstanceOf(TypeError);
    await expect(store.saveInfo('x', [] as never)).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    await expect(store.appendEvent('x', null as never)).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    await expect(store.batchFork('x', -1)).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    expect(await store.exists('x')).toBe(false);
    await store.close();
  });
});

describe('SqliteStore: agent ids', () => {
  const ids = [
    'team/a',
    '../../etc/passwd',
    'with  spaces ',
    'emoji 😀🧪',
    'x'.repeat(255),
    '%_*',
    'A',
    'a',
    '\uE000',
  ];

  it('stores, lists in code-point order, and deletes agents with unusual ids', async () => {
    const store = new SqliteStore(await freshDbPath());
    const fixture = fixtureSample.agents[0]!;
    for (const id of ids) {
      await store.saveInfo(id, { ...fixture.info, agentId: id });
      await store.saveMessages(id, fixture.messages);
      await store.appendEvent(id, timeline(1));
    }
    const sorted = [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)) as number);
    expect(await store.list()).toEqual(sorted);
    for (const id of ids) {
      expect(await store.exists(id)).toBe(true);
      expect(await store.loadMessages(id)).toEqual(fixture.messages);
      expect((await store.loadInfo(id))?.agentId).toBe(id);
    }
    expect(await store.list('%')).toEqual(['%_*']);
    expect(await store.list('team/')).toEqual(['team/a']);
    expect(await store.list('x'.repeat(255))).toEqual(['x'.repeat(255)]);
    await store.delete('../../etc/passwd');
    expect(await store.list()).toEqual(sorted.filter((id) => id !== '../../etc/passwd'));
    expect(await store.loadMessages('team/a')).toEqual(fixture.messages);
    await store.close();
  });

  it('matches a list prefix ending in the highest code point literally', async () => {
    const store = new SqliteStore(await freshDbPath());
    const ids = ['a\u{10FFFF}', 'a\u{10FFFF}b', 'a\u{10FFFF}\u{10FFFF}', 'b'];
    for (const id of ids) await store.saveTodos(id, { todos: [], version: 1, updatedAt: 1 });
    expect(await store.list('a\u{10FFFF}')).toEqual(['a\u{10FFFF}', 'a\u{10FFFF}b', 'a\u{10FFFF}\u{10FFFF}']);
    await store.close();
  });
});

describe('SqliteStore: query plans', () => {
  let db: Database.Database;
  let store: SqliteStore;

  beforeAll(async () => {
    ({ store, db } = await storeWithConnection());
    for (const agent of fixtureSample.agents) {
      await store.saveInfo(agent.agentId, agent.info);
      await store.saveMessages(agent.agentId, agent.messages);
      await store.saveToolCallRecords(agent.agentId, agent.toolCalls);
      for (const entry of agent.events.slice(0, 20)) await store.appendEvent(agent.agentId, entry);
    }
  });

  afterAll(async () => {
    await store.close();
    db.close();
  });

  function plan(query: BuiltQuery): string[] {
    return (
      db.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).all(...query.parameters) as Array<{ detail: string }>
    ).map((row) => row.detail);
  }

  /** Fails on a table scan that does not walk an index. */
  function expectNoFullScan(details: string[]): void {
    for (const detail of details) expect(detail).not.toMatch(/^SCAN \w+( AS \w+)?$/);
  }

  /** A filtered query must look its rows up through an index, not walk the table. */
  function expectIndexSearch(query: BuiltQuery): void {
    const details = plan(query);
    expectNoFullScan(details);
    expect(
      details.some((d) =>
        /^SEARCH \w+ USING (COVERING )?INDEX|^SEARCH \w+ USING INTEGER PRIMARY KEY/.test(d),
      ),
      details.join('\n'),
    ).toBe(true);
    expect(
      details.some((d) => /^SCAN /.test(d)),
      details.join('\n'),
    ).toBe(false);
  }

  /** An unfiltered query walks the sort index in order and stops at its LIMIT: no sorting of all rows. */
  function expectOrderedIndexWalk(query: BuiltQuery): void {
    const details = plan(query);
    expectNoFullScan(details);
    expect(details.join('\n')).not.toMatch(/TEMP B-TREE/);
  }

  it('serves every session filter and sort with an index', () => {
    for (const sortBy of ['created_at', 'updated_at', 'message_count'] as const) {
      for (const sortOrder of ['asc', 'desc'] as const) {
        expectOrderedIndexWalk(sessionQuery(normalizeSessionFilters({ sortBy, sortOrder })));
      }
    }
    expectIndexSearch(sessionQuery(normalizeSessionFilters({ agentId: 'a' })));
    expectIndexSearch(sessionQuery(normalizeSessionFilters({ templateId: 'fx-approval' })));
    expectIndexSearch(sessionQuery(normalizeSessionFilters({ userId: 'u1' })));
    expectIndexSearch(sessionQuery(normalizeSessionFilters({ createdAfter: new Date(0) })));
    expectIndexSearch(sessionQuery(normalizeSessionFilters({ startDate: 0, endDate: Date.now() })));
  });

  it('serves every message filter with an index', () => {
    expectOrderedIndexWalk(messageQuery(normalizeMessageFilters({})));
    expectOrderedIndexWalk(messageQuery(normalizeMessageFilters({ sortOrder: 'asc' })));
    expectIndexSearch(messageQuery(normalizeMessageFilters({ agentId: 'a' })));
    expectIndexSearch(messageQuery(normalizeMessageFilters({ role: 'assistant' })));
    expectIndexSearch(messageQuery(normalizeMessageFilters({ contentType: 'tool_use' })));
    expectIndexSearch(messageQuery(normalizeMessageFilters({ agentId: 'a', contentType: 'tool_use' })));
    expectIndexSearch(messageQuery(normalizeMessageFilters({ agentId: 'a', role: 'user' })));
    expectIndexSearch(messageQuery(normalizeMessageFilters({ createdAfter: 0 })));
  });

  it('serves every tool-call filter and sort with an index', () => {
    expectOrderedIndexWalk(toolCallQuery(normalizeToolCallFilters({})));
    expectOrderedIndexWalk(
      toolCallQuery(normalizeToolCallFilters({ sortBy: 'updated_at', sortOrder: 'asc' })),
    );
    expectIndexSearch(toolCallQuery(normalizeToolCallFilters({ agentId: 'a' })));
    expectIndexSearch(toolCallQuery(normalizeToolCallFilters({ agentId: 'a', sortBy: 'updated_at' })));
    expectIndexSearch(toolCallQuery(normalizeToolCallFilters({ toolName: 'bash_run' })));
    expectIndexSearch(toolCallQuery(normalizeToolCallFilters({ state: 'FAILED' })));
    expectIndexSearch(toolCallQuery(normalizeToolCallFilters({ isError: true })));
    expectIndexSearch(toolCallQuery(normalizeToolCallFilters({ hasApproval: true })));
    expectIndexSearch(toolCallQuery(normalizeToolCallFilters({ createdBefore: Date.now() })));
  });

  it('answers a true flag from its partial index and a false one by walking the time index', () => {
    const details = (filters: Parameters<typeof normalizeToolCallFilters>[0]) =>
      plan(toolCallQuery(normalizeToolCallFilters(filters))).join('\n');
    expectIndexSearch(toolCallQuery(normalizeToolCallFilters({ isError: true })));
    expect(details({ isError: true })).toMatch(/INDEX tool_calls_errors/);
    expect(details({ hasApproval: true })).toMatch(/INDEX tool_calls_approvals/);
    // Nearly every call is not an error: reading the newest first and skipping the rest is the plan.
    expectOrderedIndexWalk(toolCallQuery(normalizeToolCallFilters({ isError: false })));
    expectOrderedIndexWalk(toolCallQuery(normalizeToolCallFilters({ hasApproval: false })));
  });

  it('reads filtered tool calls in the order of an index, sorting nothing', () => {
    // Indexes ending at the time would leave SQLite sorting the calls of one
    // millisecond; at 50,000 agents sharing times that took 10-30 ms (schema v3).
    for (const filters of [
      { toolName: 'fs_write' },
      { state: 'FAILED' as const },
      { toolName: 'fs_write', state: 'FAILED' as const },
      { isError: true },
      { hasApproval: true },
      { toolName: 'fs_write', sortOrder: 'asc' as const },
      { createdAfter: 0 },
    ]) {
      const query = toolCallQuery(normalizeToolCallFilters(filters));
      expectIndexSearch(query);
      expect(plan(query).join('\n')).not.toMatch(/TEMP B-TREE/);
    }
  });

  it("reads one agent's messages of a content type in order from the content-type key", () => {
    const query = messageQuery(normalizeMessageFilters({ agentId: 'a', contentType: 'tool_use' }));
    expectIndexSearch(query);
    expect(plan(query).join('\n')).not.toMatch(/TEMP B-TREE/);
  });

  it('reads events, per-agent lists and agent ids through indexes', () => {
    expectIndexSearch(eventPageQuery('a', 0, {}, 256, true));
    expectIndexSearch(eventPageQuery('a', 10, { channel: 'progress' }, 256, true));
    expectIndexSearch(
      eventPageQuery('a', 10, { channel: 'monitor', since: { seq: 3, timestamp: 0 } }, 256, true),
    );
    expectIndexSearch(listAgentsQuery('agt-'));
    for (const sql of [
      'SELECT message_json AS json FROM messages WHERE agent_id = ? ORDER BY position',
      'SELECT record_json AS json FROM tool_calls WHERE agent_id = ? ORDER BY position',
      'SELECT snapshot_json FROM snapshots WHERE agent_id = ? ORDER BY row_id',
      "SELECT record_json FROM agent_history WHERE agent_id = ? AND kind = 'history_window' ORDER BY row_id",
    ]) {
      expectIndexSearch({ sql, parameters: ['a'] });
      expect(plan({ sql, parameters: ['a'] }).join('\n')).not.toMatch(/TEMP B-TREE/);
    }
  });

  it('answers the queries it plans (the plans are of the SQL actually run)', async () => {
    const agent = fixtureSample.agents[0]!;
    const toolUses = agent.messages.filter((m) => m.content.some((block) => block.type === 'tool_use'));
    const found = await store.queryMessages({
      agentId: agent.agentId,
      contentType: 'tool_use',
      sortOrder: 'asc',
    });
    expect(found).toEqual(toolUses);
    const calls = await store.queryToolCalls({ agentId: agent.agentId, sortOrder: 'asc', limit: 1000 });
    expect(calls).toHaveLength(agent.toolCalls.length);
  });
});

describe('SqliteStore: schema migrations', () => {
  /**
   * Schema version 1 exactly as released. Frozen here on purpose: a change to
   * migration 1 in the code would break every file already created with it.
   */
  const SCHEMA_V1 = `
    CREATE TABLE kode_schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
    INSERT INTO kode_schema_version VALUES ('agent', 1);
    CREATE TABLE agents (agent_id TEXT PRIMARY KEY, messages_revision TEXT, tool_calls_revision TEXT,
      todos_json TEXT, media_cache_json TEXT, has_file_events INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE agent_info (agent_id TEXT PRIMARY KEY, info_json TEXT NOT NULL, template_id TEXT NOT NULL,
      user_id TEXT, created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL, message_count INTEGER NOT NULL);
    CREATE INDEX agent_info_by_created ON agent_info (created_at_ms, agent_id);
    CREATE INDEX agent_info_by_updated ON agent_info (updated_at_ms, agent_id);
    CREATE INDEX agent_info_by_message_count ON agent_info (message_count, agent_id);
    CREATE INDEX agent_info_by_template ON agent_info (template_id, created_at_ms, agent_id);
    CREATE INDEX agent_info_by_user ON agent_info (user_id, created_at_ms, agent_id);
    CREATE TABLE messages (agent_id TEXT NOT NULL, position INTEGER NOT NULL, message_json TEXT NOT NULL,
      role TEXT NOT NULL, created_at_ms INTEGER NOT NULL, PRIMARY KEY (agent_id, position));
    CREATE INDEX messages_by_created ON messages (created_at_ms, agent_id, position);
    CREATE INDEX messages_by_agent_created ON messages (agent_id, created_at_ms, position);
    CREATE INDEX messages_by_role ON messages (role, created_at_ms, agent_id, position);
    CREATE TABLE tool_calls (agent_id TEXT NOT NULL, position INTEGER NOT NULL, call_id TEXT NOT NULL,
      record_json TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, is_error INTEGER NOT NULL,
      has_approval INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
      PRIMARY KEY (agent_id, position));
    CREATE INDEX tool_calls_by_created ON tool_calls (created_at_ms, agent_id, call_id);
    CREATE INDEX tool_calls_by_updated ON tool_calls (updated_at_ms, agent_id, call_id);
    CREATE INDEX tool_calls_by_agent_created ON tool_calls (agent_id, created_at_ms, call_id);
    CREATE INDEX tool_calls_by_agent_updated ON tool_calls (agent_id, updated_at_ms, call_id);
    CREATE INDEX tool_calls_by_name ON tool_calls (name, created_at_ms, agent_id, call_id);
    CREATE INDEX tool_calls_by_state ON tool_calls (state, created_at_ms, agent_id, call_id);
    CREATE INDEX tool_calls_by_error ON tool_calls (is_error, created_at_ms, agent_id, call_id);
    CREATE INDEX tool_calls_by_approval ON tool_calls (has_approval, created_at_ms, agent_id, call_id);
    CREATE TABLE events (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, channel TEXT, seq INTEGER,
      timeline_json TEXT NOT NULL);
    CREATE INDEX events_by_agent ON events (agent_id);
    CREATE INDEX events_by_agent_channel ON events (agent_id, channel);
    CREATE TABLE snapshots (row_id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, snapshot_id TEXT NOT NULL,
      snapshot_json TEXT NOT NULL, UNIQUE (agent_id, snapshot_id));
    CREATE INDEX snapshots_by_agent ON snapshots (agent_id);
    CREATE TABLE agent_history (row_id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, kind TEXT NOT NULL,
      record_json TEXT NOT NULL);
    CREATE INDEX agent_history_by_agent ON agent_history (agent_id, kind);
    CREATE TABLE agent_locks (agent_id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at_ms INTEGER NOT NULL);
  `;

  it('creates a new file at the latest schema version', async () => {
    const path = await freshDbPath();
    const store = new SqliteStore(path);
    await store.list();
    await store.close();
    expect(agentSchemaVersion(path)).toBe(latestVersion(AGENT_SCHEMA_MIGRATIONS));
  });

  it('upgrades a file created at schema version 1 with its data intact and indexed', async () => {
    const path = await freshDbPath();
    const agent = fixtureSample.agents[0]!;
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(SCHEMA_V1);
    const insert = old.prepare(
      'INSERT INTO messages (agent_id, position, message_json, role, created_at_ms) VALUES (?, ?, ?, ?, ?)',
    );
    agent.messages.forEach((message, i) => {
      insert.run(agent.agentId, i, JSON.stringify(message), message.role, 1_000 + i);
    });
    const insertCall = old.prepare(
      'INSERT INTO tool_calls (agent_id, position, call_id, record_json, name, state, is_error, has_approval, ' +
        'created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    agent.toolCalls.forEach((record, i) => {
      insertCall.run(
        agent.agentId,
        i,
        record.id,
        JSON.stringify(record),
        record.name,
        record.state,
        record.isError === true ? 1 : 0,
        record.approval?.required === true ? 1 : 0,
        record.createdAt,
        record.updatedAt,
      );
    });
    old.prepare('INSERT INTO agents (agent_id) VALUES (?)').run(agent.agentId);
    old.close();

    const store = new SqliteStore(path);
    expect(await store.loadMessages(agent.agentId)).toEqual(agent.messages);
    expect(await store.loadToolCallRecords(agent.agentId)).toEqual(agent.toolCalls);
    expect(agentSchemaVersion(path)).toBe(latestVersion(AGENT_SCHEMA_MIGRATIONS));
    const toolUses = agent.messages.filter((m) => m.content.some((block) => block.type === 'tool_use'));
    expect(toolUses.length).toBeGreaterThan(0);
    expect(await store.queryMessages({ contentType: 'tool_use', sortOrder: 'asc' })).toEqual(toolUses);
    expect(
      await store.queryMessages({ agentId: agent.agentId, contentType: 'tool_use', sortOrder: 'asc' }),
    ).toEqual(toolUses);
    // The flags moved to partial indexes: both answers still come out, in order.
    const byCreated = [...agent.toolCalls].sort(
      (a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id),
    );
    const errors = byCreated.filter((record) => record.isError === true);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.length).toBeLessThan(byCreated.length);
    expect(await store.queryToolCalls({ isError: true, sortOrder: 'asc' })).toEqual(errors);
    expect(await store.queryToolCalls({ isError: false, sortOrder: 'asc' })).toEqual(
      byCreated.filter((record) => record.isError !== true),
    );
    expect(await store.queryToolCalls({ hasApproval: true, sortOrder: 'asc' })).toEqual(byCreated);
    expect(await store.queryToolCalls({ agentId: agent.agentId, sortOrder: 'asc' })).toEqual(byCreated);
    // The upgraded file takes incremental saves like a new one.
    await store.saveMessages(agent.agentId, [...agent.messages, ...conversation(1)]);
    expect(await store.loadMessages(agent.agentId)).toHaveLength(agent.messages.length + 1);
    await store.close();

    const db = new Database(path, { readonly: true });
    const indexes = (table: string) =>
      (
        db
          .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL")
          .all(table) as Array<{ name: string }>
      )
        .map((row) => row.name)
        .sort();
    expect(indexes('tool_calls')).toEqual([
      'tool_calls_approvals',
      'tool_calls_by_created',
      'tool_calls_by_name',
      'tool_calls_by_state',
      'tool_calls_by_updated',
      'tool_calls_errors',
    ]);
    expect(indexes('message_content_types')).toEqual(['message_content_types_by_type']);
    const table = db
      .prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'message_content_types'")
      .get() as { sql: string };
    expect(table.sql).toMatch(/WITHOUT ROWID/);
    db.close();
  });

  it('refuses a file from a newer kode-store with a typed error, without crashing', async () => {
    const path = await freshDbPath();
    const newer = new Database(path);
    newer.exec(
      "CREATE TABLE kode_schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL); INSERT INTO kode_schema_version VALUES ('agent', 99)",
    );
    newer.close();
    const store = new SqliteStore(path);
    const error = await store.loadMessages('a').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KODE_UNSUPPORTED' });
    expect(String((error as Error).message)).toMatch(/version 99/);
    await expect(store.list()).rejects.toMatchObject({ code: 'KODE_UNSUPPORTED' });
    await store.close();
    expect(agentSchemaVersion(path)).toBe(99);
  });
});

describe('SqliteStore: waiting for another process', () => {
  it("waits for another process's write transaction without freezing the event loop", async () => {
    const path = await freshDbPath();
    // The save must still be waiting when the holder lets go: that takes 20 timer ticks, a
    // read and a round trip to the child, which a loaded machine can stretch towards the
    // default 5 s busy bound. This one is never reached.
    const store = new SqliteStore({ path, busyTimeoutMs: 60_000 });
    await store.saveMessages('busy', conversation(1));
    const holder = ChildScript.start('sqlite-hold-write-lock.ts', [path]);
    try {
      await holder.waitFor('locked');
      let released = false;
      const saved = store.saveMessages('busy', conversation(2)).then(() => released);
      // Timer callbacks keep running while the save waits: the loop is not frozen.
      let ticks = 0;
      while (ticks < 20) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        ticks++;
      }
      // Reads do not wait for the writer (WAL).
      expect(await store.loadMessages('busy')).toEqual(conversation(1));
      released = true;
      holder.send('release');
      await holder.waitFor('released');
      expect(await saved).toBe(true);
      expect(await store.loadMessages('busy')).toEqual(conversation(2));
    } finally {
      await holder.kill();
      await store.close();
    }
  });

  it('gives up after busyTimeoutMs with a typed error and leaves nothing half-written', async () => {
    const path = await freshDbPath();
    const store = new SqliteStore({ path, busyTimeoutMs: 200 });
    await store.saveMessages('busy', conversation(1));
    const holder = ChildScript.start('sqlite-hold-write-lock.ts', [path]);
    try {
      await holder.waitFor('locked');
      const error = await store.saveMessages('busy', conversation(3)).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'KODE_BUSY', backend: 'sqlite', operation: 'saveMessages' });
      expect((error as Error).message).toMatch(/stayed locked/);
      expect((error as Error).cause).toMatchObject({ code: expect.stringMatching(/^SQLITE_BUSY/) });
      holder.send('release');
      await holder.waitFor('released');
      expect(await store.loadMessages('busy')).toEqual(conversation(1));
      await store.saveMessages('busy', conversation(3));
      expect(await store.loadMessages('busy')).toEqual(conversation(3));
    } finally {
      await holder.kill();
      await store.close();
    }
  });
});

describe('SqliteStore: set-up', () => {
  it('uses WAL and synchronous FULL by default, NORMAL when asked', async () => {
    const full = await storeWithConnection();
    expect(full.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(full.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(full.store.durability).toBe('full');
    await full.store.close();
    const normal = await storeWithConnection({ durability: 'normal' });
    expect(normal.db.pragma('synchronous', { simple: true })).toBe(1);
    await normal.store.close();
  });

  it('creates the database and its parent directories on first use, and nothing else', async () => {
    const dir = await freshDir();
    const store = new SqliteStore(join(dir, 'deep', 'er', 'agents.db'), join(dir, 'unused-file-store'));
    expect(await readdir(dir)).toEqual([]);
    await store.saveMessages('a', conversation(2));
    await store.appendEvent('a', timeline(1));
    expect(await readdir(dir)).toEqual(['deep']);
    expect(await readdir(join(dir, 'deep'))).toEqual(['er']);
    expect((await readdir(join(dir, 'deep', 'er'))).sort()).toEqual([
      'agents.db',
      'agents.db-shm',
      'agents.db-wal',
    ]);
    await store.close();
  });

  const badOptions: Array<[string, object, string]> = [
    ['no path', {}, 'path'],
    ['an unknown eventStorage', { path: 'x.db', eventStorage: 'cloud' }, 'eventStorage'],
    ['file events without a base directory', { path: 'x.db', eventStorage: 'file' }, 'fileStoreBaseDir'],
    ['an unknown durability', { path: 'x.db', durability: 'extra' }, 'durability'],
    ['a negative busyTimeoutMs', { path: 'x.db', busyTimeoutMs: -1 }, 'busyTimeoutMs'],
    ['a tiny lockLeaseMs', { path: 'x.db', lockLeaseMs: 5 }, 'lockLeaseMs'],
    ['a database that is not one', { path: 'x.db', database: {} }, 'database'],
  ];
  for (const [what, options, variable] of badOptions) {
    it(`reports ${what} as a ConfigError from the first call, never from the constructor`, async () => {
      const store = new SqliteStore(options as never);
      await expect(store.loadMessages('a')).rejects.toMatchObject({ code: 'KODE_CONFIG', variable });
      await expect(store.acquireAgentLock('a')).rejects.toMatchObject({ code: 'KODE_CONFIG', variable });
      await store.close();
    });
  }

  it('says to install better-sqlite3 when it cannot be loaded', async () => {
    const elsewhere = createRequire(join(await freshDir(), 'nothing-installed-here.js'));
    const error = (() => {
      try {
        loadBetterSqlite3((id) => elsewhere(id));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: 'KODE_CONFIG', variable: 'better-sqlite3' });
    expect(String((error as Error).message)).toContain('npm install better-sqlite3');
  });

  it('turns a path it cannot open into a rejected promise, and tries again on the next call', async () => {
    const dir = await freshDir();
    const path = join(dir, 'agents.db');
    await mkdir(path); // a directory where the database file should be
    const store = new SqliteStore(path);
    const error = await store.saveMessages('a', conversation(1)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KODE_STORE_ERROR', backend: 'sqlite', operation: 'saveMessages' });
    await rm(path, { recursive: true });
    await store.saveMessages('a', conversation(1));
    expect(await store.loadMessages('a')).toEqual(conversation(1));
    await store.close();
  });

  it('accepts the seed constructor form and an in-memory database', async () => {
    const store = new SqliteStore(':memory:');
    await store.saveMessages('m', conversation(3));
    expect(await store.loadMessages('m')).toEqual(conversation(3));
    expect(store.capabilities).toMatchObject({
      crossProcessLocks: false,
      durable: false,
      transactions: true,
    });
    expect(store.capabilities.reasons?.crossProcessLocks).toMatch(/in-memory/);
    await store.close();
  });
});

/**
 * Commits in the database's WAL file since it was last reset: frames whose
 * header carries the current salts and a non-zero "database size after
 * commit" field (the SQLite WAL format). Counts transactions from outside,
 * without touching the store.
 */
function walCommits(dbPath: string): number {
  const wal = readFileSync(`${dbPath}-wal`);
  if (wal.length < 32) return 0;
  const pageSize = wal.readUInt32BE(8);
  const salts = [wal.readUInt32BE(16), wal.readUInt32BE(20)];
  let commits = 0;
  for (let frame = 32; frame + 24 + pageSize <= wal.length; frame += 24 + pageSize) {
    if (wal.readUInt32BE(frame + 8) !== salts[0] || wal.readUInt32BE(frame + 12) !== salts[1]) break;
    if (wal.readUInt32BE(frame + 4) !== 0) commits++;
  }
  return commits;
}

describe('SqliteStore: events', () => {
  it('writes a burst of un-awaited appends in one transaction, awaited ones in one each', async () => {
    const path = await freshDbPath();
    const store = new SqliteStore(path);
    await store.list();
    const before = walCommits(path);
    await Promise.all(Array.from({ length: 500 }, (_, i) => store.appendEvent('burst', timeline(i))));
    const afterBurst = walCommits(path);
    expect(afterBurst - before).toBe(1);
    for (let i = 0; i < 20; i++) await store.appendEvent('burst', timeline(500 + i));
    expect(walCommits(path) - afterBurst).toBe(20);
    await store.close();
  });

  it('keeps the call order of un-awaited appends and reads them back page by page', async () => {
    const store = new SqliteStore(await freshDbPath());
    const appends: Array<Promise<void>> = [];
    const channels = ['progress', 'monitor', 'control'] as const;
    for (let i = 0; i < 700; i++) {
      // Reused seqs (as after a crash) must not change the order.
      appends.push(store.appendEvent('stream', timeline(i % 300, channels[i % 3])));
      appends.push(store.appendEvent('other', timeline(i)));
    }
    await Promise.all(appends);
    const read: Timeline[] = [];
    for await (const entry of store.readEvents('stream')) read.push(entry);
    expect(read.map((e) => e.cursor)).toEqual(Array.from({ length: 700 }, (_, i) => i % 300));
    const monitor: Timeline[] = [];
    for await (const entry of store.readEvents('stream', {
      channel: 'monitor',
      since: { seq: 250, timestamp: 0 },
    })) {
      monitor.push(entry);
    }
    expect(monitor).toEqual(read.filter((e) => e.event.channel === 'monitor' && e.bookmark.seq > 250));
    await store.close();
  });

  it('lets a reader stop early and sees appends of another store object', async () => {
    const path = await freshDbPath();
    const writer = new SqliteStore(path);
    const reader = new SqliteStore(path);
    await Promise.all(Array.from({ length: 300 }, (_, i) => writer.appendEvent('shared', timeline(i))));
    let seen = 0;
    for await (const _ of reader.readEvents('shared')) {
      if (++seen === 3) break;
    }
    expect(seen).toBe(3);
    let all = 0;
    for await (const _ of reader.readEvents('shared')) all++;
    expect(all).toBe(300);
    await writer.close();
    await reader.close();
  });
});

describe('SqliteStore: batchFork', () => {
  it('copies an agent to new ids in one go, keeping tool-call ids', async () => {
    const store = new SqliteStore(await freshDbPath());
    const agent = fixtureSample.agents.find((a) => a.todos)!;
    await store.saveInfo(agent.agentId, agent.info);
    await store.saveMessages(agent.agentId, agent.messages);
    await store.saveToolCallRecords(agent.agentId, agent.toolCalls);
    await store.saveTodos(agent.agentId, agent.todos!);
    await store.saveSnapshot(agent.agentId, fixtureSample.snapshot);
    const forks = await store.batchFork(agent.agentId, 3);
    expect(new Set(forks).size).toBe(3);
    for (const fork of forks) {
      expect(fork.startsWith(`${agent.agentId}/fork-`)).toBe(true);
      expect(await store.loadMessages(fork)).toEqual(agent.messages);
      expect((await store.loadToolCallRecords(fork)).map((r) => r.id)).toEqual(
        agent.toolCalls.map((r) => r.id),
      );
      expect(await store.loadTodos(fork)).toEqual(agent.todos);
      expect(await store.listSnapshots(fork)).toEqual([fixtureSample.snapshot]);
      expect(await store.loadInfo(fork)).toEqual({
        ...agent.info,
        agentId: fork,
        lineage: [...agent.info.lineage, agent.agentId],
      });
      expect(await store.queryMessages({ agentId: fork, contentType: 'text', limit: 1000 })).toHaveLength(
        agent.messages.filter((m) => m.content.some((b) => b.type === 'text')).length,
      );
    }
    expect(await store.list(`${agent.agentId}/`)).toEqual([...forks].sort());
    await store.close();
  });

  it('copies only the source of each call, however many forks ran on the connection before', async () => {
    const { store, db } = await storeWithConnection();
    const [first, second] = fixtureSample.agents.filter((a) => a.toolCalls.length > 0);
    for (const agent of [first!, second!]) {
      await store.saveMessages(agent.agentId, agent.messages);
      await store.saveToolCallRecords(agent.agentId, agent.toolCalls);
    }
    // Concurrent forks share a transaction: each must still copy its own source.
    const [fromFirst, fromSecond] = await Promise.all([
      store.batchFork(first!.agentId, 2),
      store.batchFork(second!.agentId, 2),
    ]);
    const [again] = await store.batchFork(first!.agentId, 1);
    for (const [forks, agent] of [
      [[...fromFirst, again!], first!],
      [fromSecond, second!],
    ] as const) {
      for (const fork of forks) {
        expect(await store.loadMessages(fork)).toEqual(agent.messages);
        expect(await store.loadToolCallRecords(fork)).toEqual(agent.toolCalls);
        expect(await store.queryMessages({ agentId: fork, contentType: 'text', limit: 1000 })).toHaveLength(
          agent.messages.filter((m) => m.content.some((b) => b.type === 'text')).length,
        );
      }
    }
    // The scratch copies of the sources are emptied by the transaction that filled them.
    expect(db.prepare('SELECT count(*) AS n FROM temp.kode_fork_messages').get()).toEqual({ n: 0 });
    await store.close();
  });

  it('orders the forks of a tool call, which share its time, by agent id and call id', async () => {
    const store = new SqliteStore(await freshDbPath());
    const calls = toolCalls(6).map((record, i) => ({
      ...record,
      name: 'fs_write',
      // Two pairs made in the same millisecond, as parallel calls can be.
      createdAt: 1_795_361_537_000 + Math.floor(i / 2) * 1000,
      updatedAt: 1_795_361_537_000 + Math.floor(i / 2) * 1000,
    }));
    await store.saveToolCallRecords('source', calls);
    const forks = await store.batchFork('source', 3);
    const rows = ['source', ...forks].flatMap((agentId) => calls.map((record) => ({ agentId, record })));
    const key = (row: (typeof rows)[number]) => [row.record.createdAt, row.agentId, row.record.id] as const;
    rows.sort((a, b) => {
      const [ta, aa, ca] = key(a);
      const [tb, ab, cb] = key(b);
      return ta - tb || (aa < ab ? -1 : aa > ab ? 1 : 0) || (ca < cb ? -1 : ca > cb ? 1 : 0);
    });
    const expected = rows.map((row) => row.record);
    expect(await store.queryToolCalls({ toolName: 'fs_write', sortOrder: 'asc' })).toEqual(expected);
    expect(await store.queryToolCalls({ toolName: 'fs_write' })).toEqual([...expected].reverse());
    expect(await store.queryToolCalls({ sortOrder: 'asc' })).toEqual(expected);
    expect(await store.queryToolCalls({ sortBy: 'updated_at' })).toEqual([...expected].reverse());
    // Pages cut through groups of equal times and still line up.
    const pages = [];
    for (let offset = 0; offset < expected.length; offset += 5) {
      pages.push(
        ...(await store.queryToolCalls({ toolName: 'fs_write', sortOrder: 'asc', limit: 5, offset })),
      );
    }
    expect(pages).toEqual(expected);
    await store.close();
  });

  it('refuses an unknown source with NotFoundError and writes nothing', async () => {
    const store = new SqliteStore(await freshDbPath());
    await expect(store.batchFork('nobody', 2)).rejects.toMatchObject({
      code: 'KODE_NOT_FOUND',
      agentId: 'nobody',
    });
    expect(await store.list()).toEqual([]);
    await store.close();
  });
});

describe('SqliteStore: close', () => {
  it('waits for un-awaited appends, then refuses every call with StoreClosedError', async () => {
    const path = await freshDbPath();
    const store = new SqliteStore(path);
    const pending = Array.from({ length: 100 }, (_, i) => store.appendEvent('closing', timeline(i)));
    await store.close();
    await Promise.all(pending);
    for (const call of [
      () => store.loadMessages('closing'),
      () => store.saveMessages('closing', []),
      () => store.list(),
      () => store.querySessions({}),
      () => store.acquireAgentLock('closing'),
      () => store.healthCheck(),
      () => store.batchFork('closing', 1),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    }
    await expect(store.readEvents('closing')[Symbol.asyncIterator]().next()).rejects.toMatchObject({
      code: 'KODE_STORE_CLOSED',
    });
    await store.close();
    const reopened = new SqliteStore(path);
    let count = 0;
    for await (const _ of reopened.readEvents('closing')) count++;
    expect(count).toBe(100);
    await reopened.close();
  });

  it('leaves an injected database open', async () => {
    const { store, db } = await storeWithConnection();
    await store.close();
    expect(db.open).toBe(true);
    db.close();
  });
});

describe('SqliteStore: metrics and health', () => {
  it('reports exact storage totals and a healthy database', async () => {
    const store = new SqliteStore(await freshDbPath());
    await store.saveMessages('a', conversation(7));
    await store.saveToolCallRecords('b', toolCalls(4));
    await Promise.all([store.appendEvent('a', timeline(1)), store.appendEvent('c', timeline(2))]);
    const metrics = await store.getMetrics();
    expect(metrics.storage).toMatchObject({
      totalAgents: 3,
      totalMessages: 7,
      totalToolCalls: 4,
      totalEvents: 2,
    });
    expect(metrics.storage.dbSizeBytes).toBeGreaterThan(0);
    expect(metrics.operations.saves).toBe(4);
    const health = await store.healthCheck();
    expect(health).toMatchObject({
      healthy: true,
      database: { connected: true },
      fileSystem: { writable: true },
    });
    await store.close();
  });

  it('finds stored messages that disagree with info.messageCount', async () => {
    const store = new SqliteStore(await freshDbPath());
    const agent = fixtureSample.agents[0]!;
    await store.saveInfo(agent.agentId, { ...agent.info, messageCount: agent.messages.length });
    await store.saveMessages(agent.agentId, agent.messages);
    expect(await store.checkConsistency(agent.agentId)).toMatchObject({ consistent: true, issues: [] });
    await store.saveMessages(agent.agentId, agent.messages.slice(1));
    const result = await store.checkConsistency(agent.agentId);
    expect(result.consistent).toBe(false);
    expect(result.issues.join('\n')).toMatch(/messageCount/);
    await store.close();
  });
});

describe('SqliteStore: hybrid mode (events in files)', () => {
  async function hybridStore() {
    const dir = await freshDir();
    const baseDir = join(dir, 'events');
    const store = new SqliteStore({
      path: join(dir, 'agents.db'),
      fileStoreBaseDir: baseDir,
      eventStorage: 'file',
    });
    return { store, baseDir, dbPath: join(dir, 'agents.db') };
  }

  it('keeps events in files, in call order, and none in the database', async () => {
    const { store, baseDir, dbPath } = await hybridStore();
    expect(store.capabilities.fileEvents).toBe(true);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.appendEvent('hybrid/agent', timeline(i))));
    const read: number[] = [];
    for await (const entry of store.readEvents('hybrid/agent')) read.push(entry.cursor);
    expect(read).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(
      (await stat(join(baseDir, agentDirName('hybrid/agent').name, 'events.jsonl'))).size,
    ).toBeGreaterThan(0);
    const db = new Database(dbPath, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 0 });
    db.close();
    await store.close();
  });

  it('knows an agent that has only events, and deletes its files', async () => {
    const { store, baseDir } = await hybridStore();
    await store.appendEvent('only-events', timeline(1));
    expect(await store.exists('only-events')).toBe(true);
    expect(await store.list()).toEqual(['only-events']);
    await store.delete('only-events');
    expect(await store.exists('only-events')).toBe(false);
    expect(await readdir(baseDir)).toEqual([]);
    await store.close();
  });

  it('leaves no trace of an agent whose only append the event file refused', async () => {
    const { store } = await hybridStore();
    const noBookmark = { cursor: 1, event: { channel: 'progress', type: 'done' } } as unknown as Timeline;
    await expect(store.appendEvent('refused', noBookmark)).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    expect(await store.exists('refused')).toBe(false);
    expect(await store.list()).toEqual([]);
    await store.close();
  });

  it('reports a missing or torn event file in checkConsistency', async () => {
    const { store, baseDir } = await hybridStore();
    await store.appendEvent('torn', timeline(1));
    await store.appendEvent('missing', timeline(1));
    expect(await store.checkConsistency('torn')).toMatchObject({ consistent: true });
    const file = (id: string) => join(baseDir, agentDirName(id).name, 'events.jsonl');
    await appendFile(file('torn'), '{"cursor":2,"bookm');
    await unlink(file('missing'));
    const torn = await store.checkConsistency('torn');
    expect(torn.consistent).toBe(false);
    expect(torn.issues.join('\n')).toMatch(/torn/);
    const missing = await store.checkConsistency('missing');
    expect(missing.consistent).toBe(false);
    expect(missing.issues.join('\n')).toMatch(/missing/);
    await store.close();
  });
});
