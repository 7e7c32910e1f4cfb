import { randomUUID } from 'node:crypto';
import type { AgentList, MessageFields, ToolCallRowFields } from '../../src/agent/agent-backend.js';
import {
  commonPrefixLength,
  pairFirstSavedTimes,
  type SavedTailItem,
} from '../../src/agent/record-fields.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { LIVE_AGENT, REGISTER_AGENT } from './sqlite-registry.js';
import { LIST_COLUMNS } from './sqlite-schema.js';

/**
 * Incremental saves of a per-agent list (messages, tool-call records). The
 * SDK saves the whole conversation after every step; rewriting it each time
 * would make a long agent's steps O(n). Instead the stored list is compared
 * with the new one and only rows that differ are written.
 *
 * The stored list's serialised items are kept in memory per agent, tagged
 * with a revision token that every save writes to the agent's row. A save
 * reads the token inside its write transaction: if another store object or
 * process saved in between, the token differs and the stored list is read
 * from the database instead of the cache. Tokens are random, so an agent
 * deleted and re-created elsewhere can never match a stale cache entry.
 */

/** How one list maps onto its table. */
export interface ListTable<F> {
  /** Column of `agents` holding the list's revision token. */
  revisionColumn: 'messages_revision' | 'tool_calls_revision';
  /** The stored serialised items, in order. */
  loadStored(agentId: string): string[];
  /** Writes item `position` (insert, or replace when `replacing`). */
  writeRow(row: ListRow<F>): void;
  /**
   * Writes items past the stored list's end (none of them `replacing`),
   * several rows per statement: a first save of a long conversation is
   * thousands of rows, and one statement call per row was a good part of it.
   */
  insertRows(rows: readonly ListRow<F>[]): void;
  /** Deletes the items at `fromPosition` and after. */
  truncate(agentId: string, fromPosition: number): void;
  /**
   * Called once before the items from `fromPosition` on are written, when
   * some of them replace stored ones: rows kept beside the list (by
   * position) can be cleared in one statement rather than one per row.
   */
  rewriteFrom?(agentId: string, fromPosition: number): void;
  /**
   * The stored first-saved times (epoch ms) of the items at `fromPosition`
   * and after, in order. Only lists whose rows are stamped with the save time
   * (messages) have it; without it every written row gets the save time.
   */
  loadSavedTimes?(agentId: string, fromPosition: number): number[];
}

export interface ListRow<F> {
  agentId: string;
  position: number;
  json: string;
  fields: F;
  /**
   * When this item was first saved: the store time of this save, or, for an
   * item equal to one of the rewritten tail, that item's stored time.
   */
  savedAtMs: number;
  replacing: boolean;
}

interface CachedList {
  revision: string;
  items: readonly string[];
}

/** How many agents' lists are cached; a long-lived store serving many agents keeps only the recent ones. */
const CACHED_AGENTS = 128;

export class IncrementalListSaver<F> {
  private readonly cache = new Map<string, CachedList>();

  constructor(
    private readonly connection: SqliteConnection,
    private readonly table: ListTable<F>,
  ) {}

  /**
   * Replaces the agent's list with `items` (already serialised) and their
   * queryable fields, writing only what changed, in one transaction.
   * `fieldsAt(position)` is asked only for the items written, so a save
   * that extends a long list does no per-item work for the kept prefix.
   * @returns the number of rows written or deleted.
   */
  async save(agentId: string, items: readonly string[], fieldsAt: (position: number) => F): Promise<number> {
    const connection = this.connection;
    const table = this.table;
    const selectRevision = `SELECT ${table.revisionColumn} AS revision FROM agents WHERE agent_id = ? AND ${LIVE_AGENT}`;
    const outcome = await connection.write(() => {
      const row = connection.statement(selectRevision).get(agentId) as
        | { revision: string | null }
        | undefined;
      const cached = this.cache.get(agentId);
      const stored =
        row?.revision != null && cached?.revision === row.revision ? cached.items : table.loadStored(agentId);
      const prefix = commonPrefixLength(stored, items);
      if (row && prefix === stored.length && prefix === items.length) {
        return { revision: row.revision, written: 0 };
      }
      const savedTimes = this.firstSavedTimes(agentId, stored, items, prefix);
      let written = 0;
      connection.statement(REGISTER_AGENT).run(agentId, Date.now());
      if (prefix < stored.length && prefix < items.length) table.rewriteFrom?.(agentId, prefix);
      // Everything past the common prefix is (re)written; items that were
      // stored before keep their first-saved time (see firstSavedTimes).
      const added: ListRow<F>[] = [];
      for (let position = prefix; position < items.length; position++) {
        const listRow: ListRow<F> = {
          agentId,
          position,
          json: items[position]!,
          fields: fieldsAt(position),
          savedAtMs: savedTimes[position - prefix] as number,
          replacing: position < stored.length,
        };
        if (listRow.replacing) table.writeRow(listRow);
        else added.push(listRow);
        written++;
      }
      if (added.length > 0) table.insertRows(added);
      if (stored.length > items.length) {
        table.truncate(agentId, items.length);
        written += stored.length - items.length;
      }
      const revision = randomUUID();
      connection
        .statement(`UPDATE agents SET ${table.revisionColumn} = ? WHERE agent_id = ?`)
        .run(revision, agentId);
      return { revision, written };
    });
    this.remember(agentId, outcome.revision, items);
    return outcome.written;
  }

  /**
   * First-saved times of `items[prefix..]`: an item equal to one of the
   * stored tail keeps its time (equal texts paired in order), others get the
   * save time. Appending (empty stored tail) reads nothing more.
   */
  private firstSavedTimes(
    agentId: string,
    stored: readonly string[],
    items: readonly string[],
    prefix: number,
  ): number[] {
    const newTail = items.slice(prefix);
    const now = Date.now();
    if (!this.table.loadSavedTimes || prefix >= stored.length) return newTail.map(() => now);
    const times = this.table.loadSavedTimes(agentId, prefix);
    const oldTail: SavedTailItem[] = [];
    // Both come from the same revision inside this transaction, so they line up.
    for (let i = 0; i < times.length && prefix + i < stored.length; i++) {
      oldTail.push({ json: stored[prefix + i] as string, savedAt: times[i] as number });
    }
    return pairFirstSavedTimes(oldTail, newTail, now);
  }

  /** Drops the cached list of one agent (it was deleted). */
  forget(agentId: string): void {
    this.cache.delete(agentId);
  }

  /** Drops every cached list. */
  clear(): void {
    this.cache.clear();
  }

  private remember(agentId: string, revision: string | null, items: readonly string[]): void {
    this.cache.delete(agentId);
    if (revision === null) return;
    this.cache.set(agentId, { revision, items });
    if (this.cache.size > CACHED_AGENTS) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }
}

/** Rows per multi-row INSERT: 64 rows of at most 10 columns stay far below SQLite's 32,766 bound variables. */
const ROWS_PER_INSERT = 64;

/**
 * Inserts `rows` (each its column values, in `columns` order) with
 * `ROWS_PER_INSERT` rows per statement, the rest one by one, so that only two
 * statements per table are ever prepared. `suffix` follows the VALUES list
 * (an upsert clause).
 */
function insertMany(
  connection: SqliteConnection,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  suffix = '',
): void {
  const head = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  let at = 0;
  if (rows.length >= ROWS_PER_INSERT) {
    const many = connection.statement(`${head}${Array(ROWS_PER_INSERT).fill(tuple).join(', ')}${suffix}`);
    for (; at + ROWS_PER_INSERT <= rows.length; at += ROWS_PER_INSERT) {
      many.run(...rows.slice(at, at + ROWS_PER_INSERT).flat());
    }
  }
  if (at < rows.length) {
    const one = connection.statement(`${head}${tuple}${suffix}`);
    for (; at < rows.length; at++) one.run(...(rows[at] as unknown[]));
  }
}

/** Table and column of each list. */
const LIST_SOURCE = {
  messages: { table: 'messages', column: 'message_json' },
  toolCalls: { table: 'tool_calls', column: 'record_json' },
} as const;

/** The stored texts of one agent's list, in order. Call inside a read or write of `connection`. */
export function storedList(connection: SqliteConnection, list: AgentList, agentId: string): string[] {
  const { table, column } = LIST_SOURCE[list];
  return connection
    .all<{ json: string }>(
      `SELECT ${column} AS json FROM ${table} WHERE agent_id = ? ORDER BY position`,
      agentId,
    )
    .map((row) => row.json);
}

/** Messages: rows of `messages`, each with its content types in `message_content_types`. */
const MESSAGE_COLUMNS = ['agent_id', ...LIST_COLUMNS.messages] as const;
const MESSAGE_UPSERT =
  ' ON CONFLICT (agent_id, position) DO UPDATE SET message_json = excluded.message_json, ' +
  'role = excluded.role, created_at_ms = excluded.created_at_ms';
const CONTENT_TYPE_COLUMNS = ['agent_id', ...LIST_COLUMNS.message_content_types] as const;

export function messageListSaver(connection: SqliteConnection): IncrementalListSaver<MessageFields> {
  const clearContentTypes = (agentId: string, from: number) =>
    connection.run('DELETE FROM message_content_types WHERE agent_id = ? AND position >= ?', agentId, from);
  // The content types of replaced rows were cleared by rewriteFrom.
  const contentTypeRows = (rows: readonly ListRow<MessageFields>[]) =>
    rows.flatMap(({ agentId, position, fields, savedAtMs }) =>
      fields.contentTypes.map((type) => [agentId, position, type, savedAtMs]),
    );
  const messageRow = ({ agentId, position, json, fields, savedAtMs }: ListRow<MessageFields>) => [
    agentId,
    position,
    json,
    fields.role,
    savedAtMs,
  ];
  return new IncrementalListSaver(connection, {
    revisionColumn: 'messages_revision',
    loadStored: (agentId) => storedList(connection, 'messages', agentId),
    writeRow: (row) => {
      insertMany(connection, 'messages', MESSAGE_COLUMNS, [messageRow(row)], MESSAGE_UPSERT);
      insertMany(connection, 'message_content_types', CONTENT_TYPE_COLUMNS, contentTypeRows([row]));
    },
    insertRows: (rows) => {
      insertMany(connection, 'messages', MESSAGE_COLUMNS, rows.map(messageRow), MESSAGE_UPSERT);
      insertMany(connection, 'message_content_types', CONTENT_TYPE_COLUMNS, contentTypeRows(rows));
    },
    // message_content_types is keyed by (agent, type, time, position): a
    // range of positions is one scan of the agent's rows, so clear it once.
    rewriteFrom: clearContentTypes,
    truncate: (agentId, from) => {
      connection.run('DELETE FROM messages WHERE agent_id = ? AND position >= ?', agentId, from);
      clearContentTypes(agentId, from);
    },
    loadSavedTimes: (agentId, from) =>
      connection
        .all<{ t: number }>(
          'SELECT created_at_ms AS t FROM messages WHERE agent_id = ? AND position >= ? ORDER BY position',
          agentId,
          from,
        )
        .map((row) => row.t),
  });
}

/** Tool-call records: rows of `tool_calls`. */
const TOOL_CALL_COLUMNS = ['agent_id', ...LIST_COLUMNS.tool_calls] as const;
const TOOL_CALL_UPSERT =
  ' ON CONFLICT (agent_id, position) DO UPDATE SET ' +
  'call_id = excluded.call_id, record_json = excluded.record_json, name = excluded.name, ' +
  'state = excluded.state, is_error = excluded.is_error, has_approval = excluded.has_approval, ' +
  'created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms';

export function toolCallListSaver(connection: SqliteConnection): IncrementalListSaver<ToolCallRowFields> {
  const toolCallRow = ({ agentId, position, json, fields }: ListRow<ToolCallRowFields>) => [
    agentId,
    position,
    fields.id,
    json,
    fields.name,
    fields.state,
    fields.isError ? 1 : 0,
    fields.hasApproval ? 1 : 0,
    fields.createdAt,
    fields.updatedAt,
  ];
  const write = (rows: readonly ListRow<ToolCallRowFields>[]) =>
    insertMany(connection, 'tool_calls', TOOL_CALL_COLUMNS, rows.map(toolCallRow), TOOL_CALL_UPSERT);
  return new IncrementalListSaver(connection, {
    revisionColumn: 'tool_calls_revision',
    loadStored: (agentId) => storedList(connection, 'toolCalls', agentId),
    writeRow: (row) => write([row]),
    insertRows: write,
    truncate: (agentId, from) =>
      connection.run('DELETE FROM tool_calls WHERE agent_id = ? AND position >= ?', agentId, from),
  });
}
