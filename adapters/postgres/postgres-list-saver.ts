import type { AgentWriteQueue } from '../../src/agent/agent-write-queue.js';
import { commonPrefixLength } from '../../src/agent/record-fields.js';
import {
  isConnectionError,
  type PostgresConnection,
  type Queryable,
  type Statement,
} from './postgres-connection.js';
import { NOW_MS } from './postgres-registry.js';

/**
 * Incremental saves of the lists the SDK re-saves whole after every step
 * (messages, tool-call records).
 *
 * The store keeps, per agent, the serialised list it last wrote or read and
 * the list's revision. A save compares the new list with that cache, and one
 * statement (one round trip) bumps the revision *only if it is still the
 * cached one* and, gated on that, rewrites the changed positions, deletes the
 * surplus tail and inserts the new items. If another store object wrote in
 * between, the revision no longer matches, nothing is written, and the save
 * falls back to a transaction that reads the stored list under a row lock.
 * Revisions come from one sequence, so a deleted and re-created agent can
 * never present a revision an old cache holds.
 *
 * With nothing cached (the agent's first save in this store object), the save
 * first bets that the list is new: one statement registers the agent and
 * inserts every item, gated on the list's revision still being 0, which only
 * a list no save ever wrote has. If the bet is lost, nothing was written and
 * the locked path runs as above.
 */

/** One extra column of a list table, filled from each item. */
export interface ListColumn {
  name: string;
  /** The element type of the array the values are sent in (`text`, `float8`, `bool`). */
  arrayType: string;
  /** SQL turning the unnested value `n.<name>` into the column value; defaults to the value itself. */
  expression?: string;
}

export interface ListTableSpec {
  /** Qualified table name. */
  table: string;
  jsonColumn: string;
  /** The revision column in the agents table. */
  revisionColumn: 'messages_revision' | 'tool_calls_revision';
  columns: ListColumn[];
  /**
   * The column (one of `columns`) holding when an item was first saved, for
   * lists whose items are stamped with the save time (messages). An item of
   * the rewritten tail equal to one stored there keeps that row's value
   * instead of the one sent; see the write statement.
   */
  firstSavedColumn?: string;
}

/**
 * A list to save: each item's serialised text, and its extra column values
 * (in `columns` order), asked for only for the items written, so that a save
 * extending a long list does no per-item work for the kept prefix.
 */
export interface EncodedList {
  texts: readonly string[];
  valuesAt(index: number): unknown[];
}

interface CachedList {
  revision: number;
  items: string[];
  chars: number;
}

/** Bounds the cache: the SDK's working set is the agents running in this process. */
const MAX_CACHED_AGENTS = 256;
const MAX_CACHED_CHARS = 64 * 1024 * 1024;

export class PostgresListSaver {
  private readonly cache = new Map<string, CachedList>();
  private cachedChars = 0;
  private readonly writeSql: Statement;
  private readonly firstWriteSql: Statement;
  private readonly lockSql: Statement;
  private readonly readSql: Statement;
  private readonly loadSql: Statement;

  constructor(
    private readonly db: PostgresConnection,
    private readonly writes: AgentWriteQueue,
    private readonly spec: ListTableSpec,
    agentsTable: string,
    revisionSequence: string,
  ) {
    const { table, jsonColumn, revisionColumn, columns, firstSavedColumn } = spec;
    const names = columns.map((c) => c.name);
    const unnestArgs = ['$5::int[]', '$6::text[]', ...columns.map((c, i) => `$${7 + i}::${c.arrayType}[]`)];
    const unnestAs = `n(position, json, ${names.join(', ')})`;
    const value = (c: ListColumn) =>
      c.name === firstSavedColumn ? `COALESCE(n.first_saved, n.${c.name})` : (c.expression ?? `n.${c.name}`);
    // With a first-saved column, each written item equal to one of the stored
    // tail (positions >= $kept, read from the statement's snapshot, i.e.
    // before this statement's own changes) takes that row's time: equal texts
    // pair occurrence by occurrence (row_number within each text, in position
    // order). The tail is read only when the stored list is longer than the
    // common prefix ($kept < $3, a one-time filter), so an append reads
    // nothing more. Otherwise the items go in as sent.
    const kept = `$${7 + columns.length}`;
    const pairing = firstSavedColumn
      ? `
      sent AS (
        SELECT u.*, row_number() OVER (PARTITION BY u.json COLLATE "C" ORDER BY u.position) AS occurrence
        FROM unnest(${unnestArgs.join(', ')}) AS u(position, json, ${names.join(', ')})
      ),
      old_tail AS (
        SELECT o.${jsonColumn} AS json, o.${firstSavedColumn} AS first_saved,
          row_number() OVER (PARTITION BY o.${jsonColumn} COLLATE "C" ORDER BY o.position) AS occurrence
        FROM ${table} AS o
        WHERE o.agent_id = $1 AND o.position >= ${kept}::int AND ${kept}::int < $3
      ),
      paired AS (
        SELECT sent.*, old_tail.first_saved
        FROM sent LEFT JOIN old_tail ON old_tail.json = sent.json AND old_tail.occurrence = sent.occurrence
      ),`
      : '';
    const source = firstSavedColumn ? 'paired AS n' : `unnest(${unnestArgs.join(', ')}) AS ${unnestAs}`;
    this.writeSql = db.statement(`
      WITH rev AS (
        UPDATE ${agentsTable} SET ${revisionColumn} = nextval('${revisionSequence}'), last_write_ms = ${NOW_MS}
        WHERE agent_id = $1 AND ${revisionColumn} = $2
        RETURNING ${revisionColumn} AS revision
      ),${pairing}
      changed AS (
        UPDATE ${table} AS t
        SET ${jsonColumn} = n.json, ${columns.map((c) => `${c.name} = ${value(c)}`).join(', ')}
        FROM ${source}
        WHERE t.agent_id = $1 AND t.position = n.position AND n.position < $3 AND EXISTS (SELECT 1 FROM rev)
      ),
      removed AS (
        DELETE FROM ${table} WHERE agent_id = $1 AND position >= $4 AND EXISTS (SELECT 1 FROM rev)
      ),
      added AS (
        INSERT INTO ${table} (agent_id, position, ${jsonColumn}, ${names.join(', ')})
        SELECT $1, n.position, n.json, ${columns.map(value).join(', ')}
        FROM ${source}
        WHERE n.position >= $3 AND EXISTS (SELECT 1 FROM rev)
      )
      SELECT revision FROM rev`);
    // The agent row is inserted, or updated only while its revision is 0;
    // either way it is locked until the statement commits, so a concurrent
    // first save waits and then finds the revision taken. nextval runs for
    // the proposed row even when the update does not happen: a skipped
    // revision number is harmless. Items stored with revision 0 anyway (rows
    // written by hand) lose the bet too, instead of colliding: both checks
    // see the table as it was before the statement.
    const plain = (c: ListColumn) => c.expression ?? `n.${c.name}`;
    const empty = `NOT EXISTS (SELECT 1 FROM ${table} WHERE agent_id = $1)`;
    this.firstWriteSql = db.statement(`
      WITH rev AS (
        INSERT INTO ${agentsTable} AS a (agent_id, ${revisionColumn}) VALUES ($1, nextval('${revisionSequence}'))
        ON CONFLICT (agent_id) DO UPDATE SET ${revisionColumn} = excluded.${revisionColumn}, deleted_at_ms = NULL,
          last_write_ms = excluded.last_write_ms
        WHERE a.${revisionColumn} = 0
        RETURNING ${revisionColumn} AS revision
      ),
      added AS (
        INSERT INTO ${table} (agent_id, position, ${jsonColumn}, ${names.join(', ')})
        SELECT $1, n.position, n.json, ${columns.map(plain).join(', ')}
        FROM unnest(${['$2::int[]', '$3::text[]', ...columns.map((c, i) => `$${4 + i}::${c.arrayType}[]`)].join(', ')})
          AS ${unnestAs}
        WHERE EXISTS (SELECT 1 FROM rev) AND ${empty}
      )
      SELECT revision FROM rev WHERE ${empty}`);
    // Registers the agent if needed and locks its row, returning the revision.
    this.lockSql = db.statement(`
      INSERT INTO ${agentsTable} (agent_id) VALUES ($1)
      ON CONFLICT (agent_id) DO UPDATE SET ${revisionColumn} = ${agentsTable}.${revisionColumn}, deleted_at_ms = NULL,
        last_write_ms = excluded.last_write_ms
      RETURNING ${revisionColumn} AS revision`);
    this.readSql = db.statement(
      `SELECT ${jsonColumn} AS json FROM ${table} WHERE agent_id = $1 ORDER BY position`,
    );
    // One statement, one snapshot: the list and the revision it belongs to.
    this.loadSql = db.statement(`
      SELECT a.${revisionColumn} AS revision, t.${jsonColumn} AS json
      FROM ${agentsTable} AS a LEFT JOIN ${table} AS t ON t.agent_id = a.agent_id
      WHERE a.agent_id = $1
      ORDER BY t.position`);
  }

  /** Replaces the agent's list with `items`, writing only what changed. Call synchronously, in call order. */
  save(agentId: string, items: EncodedList): Promise<void> {
    return this.writes.write(agentId, async () => {
      const next = [...items.texts];
      const cached = this.cache.get(agentId);
      this.forget(agentId);
      try {
        const revision = cached
          ? await this.write(this.db, agentId, cached.revision, cached.items, items, next)
          : await this.writeFirst(agentId, items);
        if (revision !== undefined) {
          this.remember(agentId, revision, next);
          return;
        }
      } catch (error) {
        // The statement's outcome is unknown when the connection died under
        // it; the locked path below reads what is really stored.
        if (!isConnectionError(error)) throw error;
      }
      const revision = await this.db.transaction(async (tx) => {
        const locked = await tx.query<{ revision: number }>(this.lockSql, [agentId]);
        const current = (locked[0] as { revision: number }).revision;
        const stored = (await tx.query<{ json: string }>(this.readSql, [agentId])).map((row) => row.json);
        const written = await this.write(tx, agentId, current, stored, items, next);
        if (written === undefined) throw new Error('revision changed while its row was locked');
        return written;
      });
      this.remember(agentId, revision, next);
    });
  }

  /** Loads the agent's list (serialised items, in order) and caches it for the next save. */
  async load(agentId: string): Promise<string[]> {
    await this.writes.settled(agentId);
    const rows = await this.db.query<{ revision: number; json: string | null }>(
      this.loadSql,
      [agentId],
      true,
    );
    if (rows.length === 0) {
      this.forget(agentId);
      return [];
    }
    const items = rows.filter((row) => row.json !== null).map((row) => row.json as string);
    // A save that ran meanwhile may have cached a newer revision; an older one
    // here only costs that save's successor the locked path.
    this.remember(agentId, (rows[0] as { revision: number }).revision, items);
    return items;
  }

  /** Drops the cached list (after a delete, or when its revision is unknown). */
  forget(agentId: string): void {
    const entry = this.cache.get(agentId);
    if (!entry) return;
    this.cache.delete(agentId);
    this.cachedChars -= entry.chars;
  }

  private async write(
    q: Queryable,
    agentId: string,
    expectedRevision: number,
    stored: string[],
    items: EncodedList,
    next: string[],
  ): Promise<number | undefined> {
    const kept = commonPrefixLength(stored, next);
    const positions = next.slice(kept).map((_, i) => kept + i);
    const values = positions.map((position) => items.valuesAt(position));
    const params: unknown[] = [
      agentId,
      expectedRevision,
      stored.length,
      next.length,
      positions,
      next.slice(kept),
      ...this.spec.columns.map((_, c) => values.map((row) => row[c])),
    ];
    if (this.spec.firstSavedColumn) params.push(kept);
    const rows = await q.query<{ revision: number }>(this.writeSql, params);
    return rows[0]?.revision;
  }

  /** The whole list as new items, if no save ever wrote the agent's list; the new revision, or undefined. */
  private async writeFirst(agentId: string, items: EncodedList): Promise<number | undefined> {
    const values = items.texts.map((_, i) => items.valuesAt(i));
    const rows = await this.db.query<{ revision: number }>(this.firstWriteSql, [
      agentId,
      items.texts.map((_, i) => i),
      items.texts,
      ...this.spec.columns.map((_, c) => values.map((row) => row[c])),
    ]);
    return rows[0]?.revision;
  }

  private remember(agentId: string, revision: number, items: string[]): void {
    this.forget(agentId);
    const chars = items.reduce((sum, item) => sum + item.length, 0);
    if (chars > MAX_CACHED_CHARS) return;
    this.cache.set(agentId, { revision, items, chars });
    this.cachedChars += chars;
    // Map iteration order is insertion order: the first entries are the least recently used.
    for (const [oldest] of this.cache) {
      if (this.cache.size <= MAX_CACHED_AGENTS && this.cachedChars <= MAX_CACHED_CHARS) break;
      this.forget(oldest);
    }
  }
}
