import Database from 'better-sqlite3';
import type { AgentInfo, Message, Timeline, ToolCallRecord } from '../../src/types.js';
import type { RawAgentTables, RawEventFilter, RawEventLog, RawKv, RawStep } from './raw-baseline.js';

/**
 * The raw better-sqlite3 baseline: one connection, WAL (or the rollback
 * journal the SDK's SqliteStore keeps), the same `synchronous` level as the
 * store it is compared with, prepared statements,
 * and only the primary keys and the one index the same reads need. Every
 * method is synchronous underneath; the promises only give it the shape the
 * workloads call.
 */
export class RawSqlite implements RawAgentTables, RawEventLog, RawKv {
  private readonly db: Database.Database;
  private readonly insertMessage: Database.Statement;
  private readonly upsertInfoRow: Database.Statement;
  private readonly upsertToolCall: Database.Statement;
  private readonly selectMessages: Database.Statement;
  private readonly selectToolCalls: Database.Statement;
  private readonly insertEvent: Database.Statement;
  private readonly upsertKv: Database.Statement;
  private readonly selectKv: Database.Statement;
  private readonly eventReads = new Map<string, Database.Statement>();

  /**
   * @param path the database file (its own, next to the store's)
   * @param synchronous the store's durability: `FULL` (SqliteStore's default, and the SDK's) or `NORMAL`
   * @param journal `WAL` (ours) or `DELETE` (SQLite's default, which the SDK's SqliteStore keeps)
   */
  constructor(path: string, synchronous: 'FULL' | 'NORMAL', journal: 'WAL' | 'DELETE' = 'WAL') {
    this.db = new Database(path);
    this.db.pragma(`journal_mode = ${journal}`);
    this.db.pragma(`synchronous = ${synchronous}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS agents (
        agent_id TEXT PRIMARY KEY, info_json TEXT NOT NULL, template_id TEXT, created_at_ms INTEGER,
        message_count INTEGER);
      CREATE TABLE IF NOT EXISTS messages (
        agent_id TEXT NOT NULL, position INTEGER NOT NULL, json TEXT NOT NULL, role TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL, PRIMARY KEY (agent_id, position));
      CREATE TABLE IF NOT EXISTS tool_calls (
        agent_id TEXT NOT NULL, position INTEGER NOT NULL, call_id TEXT NOT NULL, json TEXT NOT NULL,
        name TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (agent_id, position));
      CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, channel TEXT, seq INTEGER, json TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS events_by_agent ON events (agent_id);
      CREATE TABLE IF NOT EXISTS kv (
        instance TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (instance, namespace, key));
    `);
    this.insertMessage = this.db.prepare(
      'INSERT INTO messages (agent_id, position, json, role, created_at_ms) VALUES (?, ?, ?, ?, ?)',
    );
    this.upsertInfoRow = this.db.prepare(
      'INSERT INTO agents (agent_id, info_json, template_id, created_at_ms, message_count) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (agent_id) DO UPDATE SET info_json = excluded.info_json, message_count = excluded.message_count',
    );
    this.upsertToolCall = this.db.prepare(
      'INSERT INTO tool_calls (agent_id, position, call_id, json, name, state) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (agent_id, position) DO UPDATE SET call_id = excluded.call_id, json = excluded.json, ' +
        'name = excluded.name, state = excluded.state',
    );
    this.selectMessages = this.db.prepare('SELECT json FROM messages WHERE agent_id = ? ORDER BY position');
    this.selectToolCalls = this.db.prepare(
      'SELECT json FROM tool_calls WHERE agent_id = ? ORDER BY position',
    );
    this.insertEvent = this.db.prepare(
      'INSERT INTO events (agent_id, channel, seq, json) VALUES (?, ?, ?, ?)',
    );
    this.upsertKv = this.db.prepare(
      'INSERT INTO kv (instance, namespace, key, value) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (instance, namespace, key) DO UPDATE SET value = excluded.value',
    );
    this.selectKv = this.db.prepare('SELECT value FROM kv WHERE instance = ? AND namespace = ? AND key = ?');
  }

  async insertMessages(agentId: string, firstPosition: number, messages: readonly Message[]): Promise<void> {
    const now = Date.now();
    this.db.transaction(() => {
      messages.forEach((message, i) => {
        this.insertMessage.run(agentId, firstPosition + i, JSON.stringify(message), message.role, now);
      });
    })();
  }

  async appendStep(agentId: string, step: RawStep): Promise<void> {
    const now = Date.now();
    this.db.transaction(() => {
      step.messages.forEach((message, i) => {
        this.insertMessage.run(agentId, step.firstPosition + i, JSON.stringify(message), message.role, now);
      });
      step.toolCalls?.records.forEach((record, i) => {
        this.upsertToolCall.run(
          agentId,
          step.toolCalls!.firstPosition + i,
          record.id,
          JSON.stringify(record),
          record.name,
          record.state,
        );
      });
      this.writeInfo(agentId, step.info);
    })();
  }

  async upsertInfo(agentId: string, info: AgentInfo): Promise<void> {
    this.writeInfo(agentId, info);
  }

  private writeInfo(agentId: string, info: AgentInfo): void {
    this.upsertInfoRow.run(
      agentId,
      JSON.stringify(info),
      info.templateId,
      Date.parse(info.createdAt),
      info.messageCount,
    );
  }

  async upsertToolCalls(
    agentId: string,
    firstPosition: number,
    records: readonly ToolCallRecord[],
  ): Promise<void> {
    this.db.transaction(() => {
      records.forEach((record, i) => {
        this.upsertToolCall.run(
          agentId,
          firstPosition + i,
          record.id,
          JSON.stringify(record),
          record.name,
          record.state,
        );
      });
    })();
  }

  async loadMessages(agentId: string): Promise<Message[]> {
    return (this.selectMessages.all(agentId) as Array<{ json: string }>).map(
      (row) => JSON.parse(row.json) as Message,
    );
  }

  async loadToolCalls(agentId: string): Promise<ToolCallRecord[]> {
    return (this.selectToolCalls.all(agentId) as Array<{ json: string }>).map(
      (row) => JSON.parse(row.json) as ToolCallRecord,
    );
  }

  async copyAgent(sourceId: string, forkIds: readonly string[]): Promise<void> {
    const copyMessages = this.db.prepare(
      'INSERT INTO messages (agent_id, position, json, role, created_at_ms) ' +
        'SELECT ?, position, json, role, created_at_ms FROM messages WHERE agent_id = ?',
    );
    const copyToolCalls = this.db.prepare(
      'INSERT INTO tool_calls (agent_id, position, call_id, json, name, state) ' +
        'SELECT ?, position, call_id, json, name, state FROM tool_calls WHERE agent_id = ?',
    );
    const copyInfo = this.db.prepare(
      'INSERT INTO agents (agent_id, info_json, template_id, created_at_ms, message_count) ' +
        'SELECT ?, info_json, template_id, created_at_ms, message_count FROM agents WHERE agent_id = ?',
    );
    this.db.transaction(() => {
      for (const forkId of forkIds) {
        copyMessages.run(forkId, sourceId);
        copyToolCalls.run(forkId, sourceId);
        copyInfo.run(forkId, sourceId);
      }
    })();
  }

  async appendAllAtOnce(agentId: string, events: readonly Timeline[]): Promise<void> {
    this.db.transaction(() => {
      for (const entry of events) {
        this.insertEvent.run(agentId, entry.event.channel, entry.bookmark.seq, JSON.stringify(entry));
      }
    })();
  }

  async appendOne(agentId: string, entry: Timeline): Promise<void> {
    this.insertEvent.run(agentId, entry.event.channel, entry.bookmark.seq, JSON.stringify(entry));
  }

  async read(agentId: string, filter: RawEventFilter): Promise<number> {
    const conditions = ['agent_id = ?'];
    const parameters: unknown[] = [agentId];
    if (filter.sinceSeq !== undefined) {
      conditions.push('seq > ?');
      parameters.push(filter.sinceSeq);
    }
    if (filter.channel !== undefined) {
      conditions.push('channel = ?');
      parameters.push(filter.channel);
    }
    const sql = `SELECT json FROM events WHERE ${conditions.join(' AND ')} ORDER BY id`;
    let statement = this.eventReads.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.eventReads.set(sql, statement);
    }
    let count = 0;
    for (const row of statement.all(...parameters) as Array<{ json: string }>) {
      JSON.parse(row.json);
      count++;
    }
    return count;
  }

  async readStreaming(agentId: string, _pageSize: number, limit = Number.POSITIVE_INFINITY): Promise<number> {
    // iterate() steps the statement row by row: SQLite's own streaming, no page needed.
    const statement = this.db.prepare('SELECT json FROM events WHERE agent_id = ? ORDER BY id');
    let count = 0;
    for (const row of statement.iterate(agentId) as IterableIterator<{ json: string }>) {
      JSON.parse(row.json);
      if (++count >= limit) break;
    }
    return count;
  }

  async set(instance: string, namespace: string, key: string, value: unknown): Promise<void> {
    this.upsertKv.run(instance, namespace, key, JSON.stringify(value));
  }

  async get(instance: string, namespace: string, key: string): Promise<unknown> {
    const row = this.selectKv.get(instance, namespace, key) as { value: string } | undefined;
    return row === undefined ? undefined : JSON.parse(row.value);
  }

  async setMany(
    instance: string,
    items: ReadonlyArray<{ namespace: string; key: string; value: unknown }>,
  ): Promise<void> {
    this.db.transaction(() => {
      for (const item of items)
        this.upsertKv.run(instance, item.namespace, item.key, JSON.stringify(item.value));
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
