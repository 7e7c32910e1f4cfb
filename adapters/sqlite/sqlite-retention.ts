import type {
  AgentActivity,
  AgentScanQuery,
  EventPruneRule,
  PrunedRows,
  RemovedAgent,
  RetentionBackend,
} from '../../src/agent/agent-backend.js';
import type { EventStorage } from '../../src/agent/event-storage.js';
import type { CompactOptions, CompactResult } from '../../src/agent/retention.js';
import { eventModeMismatch } from '../../src/hybrid/event-modes.js';
import { prefixUpperBound } from '../../src/strings.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { readableJson } from './sqlite-json.js';
import { hasFileEvents, LIVE_AGENT } from './sqlite-registry.js';

/** What retention needs of the agent backend: its delete, split at the transaction. */
export interface SqliteAgentRemoval {
  /** The delete's transaction body: every row of the agent, then the tombstone. */
  removeRows(agentId: string): void;
  /** After the delete committed: drops what the backend caches of the agent and its event file. */
  removed(agentId: string): Promise<void>;
}

/**
 * The SQLite backend's `RetentionBackend`: prune decisions re-read inside
 * their own short write transactions, and `compact`, which gives freed pages
 * back (incremental auto-vacuum a bounded step at a time, or one `VACUUM`
 * that packs a file a prune left half-filled or converts an older file).
 */
export class SqliteRetention implements RetentionBackend {
  constructor(
    private readonly connection: SqliteConnection,
    private readonly events: EventStorage,
    private readonly agent: SqliteAgentRemoval,
  ) {}

  async scanAgents(query: AgentScanQuery): Promise<AgentActivity[]> {
    const conditions = [`a.${LIVE_AGENT}`];
    const parameters: unknown[] = [];
    let join = '';
    if (query.templateId !== undefined) {
      join = 'JOIN agent_info AS i ON i.agent_id = a.agent_id AND i.template_id = ?';
      parameters.push(query.templateId);
    }
    if (query.prefix !== undefined && query.prefix !== '') {
      conditions.push('a.agent_id >= ?');
      parameters.push(query.prefix);
      const upper = prefixUpperBound(query.prefix);
      if (upper !== undefined) {
        conditions.push('a.agent_id < ?');
        parameters.push(upper);
      }
    }
    if (query.after !== undefined) {
      conditions.push('a.agent_id > ?');
      parameters.push(query.after);
    }
    parameters.push(query.limit);
    const rows = await this.connection.read(() =>
      this.connection.all<{ agent_id: string; last_write_ms: number | null }>(
        `SELECT a.agent_id, a.last_write_ms FROM agents AS a ${join} WHERE ${conditions.join(' AND ')} ` +
          'ORDER BY a.agent_id LIMIT ?',
        ...parameters,
      ),
    );
    const activity: AgentActivity[] = [];
    for (const row of rows) {
      activity.push({
        agentId: row.agent_id,
        lastWriteMs: latest(row.last_write_ms, await this.events.lastWriteOutsideDatabase(row.agent_id)),
      });
    }
    return activity;
  }

  async deleteIfInactive(
    agentId: string,
    before: number,
    dryRun: boolean,
  ): Promise<RemovedAgent | undefined> {
    // As delete: appends made so far land first (and count as writes).
    await this.events.idle();
    const fileWrittenAt = await this.events.lastWriteOutsideDatabase(agentId);
    if (fileWrittenAt !== undefined && fileWrittenAt >= before) return undefined;
    if (
      this.events.mode === 'database' &&
      (await this.connection.read(() => hasFileEvents(this.connection, agentId)))
    ) {
      throw eventModeMismatch('file', { backend: 'sqlite', operation: 'prune', agentId });
    }
    const judge = (): RemovedAgent | undefined => {
      // Re-read inside the transaction: a write since the scan keeps the agent.
      const row = this.connection.get<{ last_write_ms: number | null }>(
        `SELECT last_write_ms FROM agents WHERE agent_id = ? AND ${LIVE_AGENT}`,
        agentId,
      );
      if (row?.last_write_ms === null || row === undefined || row.last_write_ms >= before) return undefined;
      let bytes = 0;
      const count = (table: string, column: string) => {
        const rows = this.connection.get<{ n: number; bytes: number }>(
          `SELECT count(*) AS n, coalesce(sum(octet_length(${column})), 0) AS bytes FROM ${table} WHERE agent_id = ?`,
          agentId,
        )!;
        bytes += rows.bytes;
        return rows.n;
      };
      const removed: RemovedAgent = {
        messages: count('messages', 'message_json'),
        toolCalls: count('tool_calls', 'record_json'),
        events: count('events', 'timeline_json'),
        snapshots: count('snapshots', 'snapshot_json'),
        files: fileWrittenAt === undefined ? 0 : 1,
        bytes: 0,
      };
      count('agent_info', 'info_json');
      count('agent_history', 'record_json');
      removed.bytes = bytes;
      if (!dryRun) this.agent.removeRows(agentId);
      return removed;
    };
    const removed = dryRun
      ? await this.connection.read(judge, { snapshot: true })
      : await this.connection.write(judge);
    if (removed && !dryRun) await this.agent.removed(agentId);
    return removed;
  }

  async pruneEvents(agentId: string, rule: EventPruneRule, dryRun: boolean): Promise<PrunedRows> {
    // Hybrid mode: the event storage rewrites the agent's file.
    if (this.events.pruneEvents) return this.events.pruneEvents(agentId, rule, dryRun);
    const { where, parameters } = eventPruneCondition(agentId, rule);
    if (dryRun)
      return this.connection.read(() => this.countRows('events', 'timeline_json', where, parameters));
    return this.connection.write(() =>
      removedRows(
        this.connection.all<{ bytes: number }>(
          `DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ${where} ORDER BY id LIMIT ?) ` +
            'RETURNING octet_length(timeline_json) AS bytes',
          ...parameters,
          rule.limit,
        ),
      ),
    );
  }

  /** How many rows `where` names and the UTF-8 bytes of their `column`. */
  private countRows(table: string, column: string, where: string, parameters: unknown[]): PrunedRows {
    return this.connection.get<PrunedRows>(
      `SELECT count(*) AS count, coalesce(sum(octet_length(${column})), 0) AS bytes FROM ${table} WHERE ${where}`,
      ...parameters,
    )!;
  }

  async pruneSnapshots(agentId: string, keepNewest: number, dryRun: boolean): Promise<PrunedRows> {
    // Rows older (by first save) than the newest N; none when the agent has N or fewer.
    const where =
      keepNewest === 0
        ? 'agent_id = ?'
        : 'agent_id = ? AND row_id < (SELECT row_id FROM snapshots WHERE agent_id = ? ORDER BY row_id DESC LIMIT 1 OFFSET ?)';
    const parameters = keepNewest === 0 ? [agentId] : [agentId, agentId, keepNewest - 1];
    if (dryRun)
      return this.connection.read(() => this.countRows('snapshots', 'snapshot_json', where, parameters));
    return this.connection.write(() =>
      removedRows(
        this.connection.all<{ bytes: number }>(
          `DELETE FROM snapshots WHERE ${where} RETURNING octet_length(snapshot_json) AS bytes`,
          ...parameters,
        ),
      ),
    );
  }

  /**
   * Gives freed pages back to the file system. An incremental auto-vacuum
   * file gets them back a bounded step at a time, unless removing rows left
   * its pages so empty that a rewrite gives back clearly more (see
   * `REWRITE_ABOVE`): free pages are only the pages nothing is left on, and
   * rows of many agents share a page, so a prune that keeps one agent in ten
   * leaves most pages holding a little. `full` rewrites the file (`VACUUM`),
   * converting one made without incremental auto-vacuum.
   */
  async compact(options: CompactOptions): Promise<CompactResult> {
    if (this.connection.inMemory) {
      return { action: 'nothing to do: an in-memory database gives its pages back as rows are removed' };
    }
    await this.events.idle();
    const measure = () =>
      this.connection.get<{ pages: number; free: number; size: number; mode: number }>(
        'SELECT p.page_count AS pages, f.freelist_count AS free, s.page_size AS size, v.auto_vacuum AS mode ' +
          'FROM pragma_page_count() AS p, pragma_freelist_count() AS f, pragma_page_size() AS s, pragma_auto_vacuum() AS v',
      )!;
    const before = await this.connection.read(measure);
    const incremental = before.mode === INCREMENTAL_VACUUM;
    if (!incremental && !options.full) {
      return {
        bytesBefore: before.pages * before.size,
        bytesAfter: before.pages * before.size,
        reclaimableBytes: before.free * before.size,
        action:
          'nothing done: this file was created without incremental auto-vacuum; ' +
          'compact with { full: true } (kode-store compact --full) converts it once, rewriting the whole file',
      };
    }
    const packing = incremental && !options.full ? await this.packing() : undefined;
    let action: string;
    if (!incremental || options.full || (packing && packing.pages > packing.packed * REWRITE_ABOVE)) {
      await this.connection.outsideTransaction((db) => {
        db.pragma('auto_vacuum = INCREMENTAL');
        db.exec('VACUUM');
      });
      action = !incremental
        ? 'full vacuum: the file was rewritten and now uses incremental auto-vacuum'
        : packing === undefined
          ? 'full vacuum: the file was rewritten'
          : `rewritten (VACUUM): the ${packing.pages} pages in use held what about ${packing.packed} pages ` +
            'hold when packed, so a rewrite gave back more than freeing pages would';
    } else {
      // A bounded number of pages per write transaction, so writers wait
      // for one short step at a time, not for the whole file. exec() runs
      // the pragma to its end (a prepared statement's step frees one page).
      const db = await this.connection.database();
      for (let free = before.free; free > 0; ) {
        const left = await this.connection.write(() => {
          db.exec(`PRAGMA incremental_vacuum(${VACUUM_PAGES_PER_STEP})`);
          return db.pragma('freelist_count', { simple: true }) as number;
        });
        if (left >= free) break;
        free = left;
      }
      action = 'incremental vacuum: free pages returned to the file system';
    }
    // The pages a vacuum moved or wrote went through the WAL: copy them into
    // the database file and empty the WAL, so the disk space goes back now
    // rather than at the last connection's close. A reader still on an
    // older snapshot makes this a no-op, not an error.
    await this.connection.outsideTransaction((db) => db.pragma('wal_checkpoint(TRUNCATE)'));
    const after = await this.connection.read(measure);
    return {
      bytesBefore: before.pages * before.size,
      bytesAfter: after.pages * after.size,
      reclaimableBytes: after.free * after.size,
      action,
    };
  }

  /**
   * The pages the file's tables and indexes use, and about how many they
   * would use packed as a rewrite packs them: per b-tree, its leaf cells at
   * their mean size, as many whole cells per page as fit, with interior
   * pages in proportion and overflow pages as they are. Read with SQLite's
   * `dbstat` (every page); `undefined` when the SQLite build lacks it.
   */
  private async packing(): Promise<{ pages: number; packed: number } | undefined> {
    let trees: PackingRow[];
    try {
      trees = await this.connection.read(() =>
        this.connection.all<PackingRow>(
          "SELECT sum(pagetype = 'leaf') AS leaves, sum(pagetype = 'internal') AS interior, " +
            "sum(pagetype = 'overflow') AS overflow, sum(CASE WHEN pagetype = 'leaf' THEN ncell END) AS cells, " +
            "sum(CASE WHEN pagetype = 'leaf' THEN pgsize - unused END) AS used, max(pgsize) AS size " +
            'FROM dbstat GROUP BY name',
        ),
      );
    } catch (error) {
      if (/no such table: dbstat/.test((error as Error).message)) return undefined;
      throw error;
    }
    let pages = 0;
    let packed = 0;
    for (const tree of trees) {
      pages += tree.leaves + tree.interior + tree.overflow;
      const cells = tree.cells ?? 0;
      if (tree.leaves === 0 || cells === 0) {
        packed += tree.leaves + tree.interior + tree.overflow;
        continue;
      }
      // A leaf page has an 8-byte header; `used` counts it, the cells and their 2-byte pointers.
      const cellBytes = Math.max(1, ((tree.used ?? 0) - LEAF_HEADER_BYTES * tree.leaves) / cells);
      const perPage = Math.max(1, Math.floor((tree.size - LEAF_HEADER_BYTES) / cellBytes));
      const leaves = Math.ceil(cells / perPage);
      packed += leaves + Math.ceil((tree.interior * leaves) / tree.leaves) + tree.overflow;
    }
    return { pages, packed };
  }
}

/** One b-tree's pages as `dbstat` counts them. */
interface PackingRow {
  leaves: number;
  interior: number;
  overflow: number;
  cells: number | null;
  used: number | null;
  size: number;
}

const LEAF_HEADER_BYTES = 8;

/**
 * A file whose pages in use are more than this many times what they would
 * be packed is rewritten by `compact`. Pages filled by appends are packed
 * already; the margin leaves alone the slack of indexes written in no
 * particular order, and keeps a file that is not rewritten within 5 % of
 * one that is.
 */
const REWRITE_ABOVE = 1.05;

/** Pages `compact` frees per write transaction (16 MB at 4 KB pages). */
const VACUUM_PAGES_PER_STEP = 4096;

/** `PRAGMA auto_vacuum` of a file that gives free pages back on `PRAGMA incremental_vacuum`. */
const INCREMENTAL_VACUUM = 2;

/** What rows returned by a DELETE ... RETURNING of their sizes held. */
function removedRows(rows: ReadonlyArray<{ bytes: number }>): PrunedRows {
  let bytes = 0;
  for (const row of rows) bytes += row.bytes;
  return { count: rows.length, bytes };
}

/** The later of two times, either of which may be unknown. */
function latest(a: number | null, b: number | undefined): number | null {
  if (b === undefined) return a;
  return a === null ? b : Math.max(a, b);
}

/**
 * The events of one agent a prune rule names: in `channels`, older than the
 * newest `keepNewest` of those (by rowid, the append order), stored before
 * `olderThan`. Events stored before the store recorded append times are
 * judged by their `bookmark.timestamp`; an event with neither is kept.
 */
function eventPruneCondition(
  agentId: string,
  rule: EventPruneRule,
): { where: string; parameters: unknown[] } {
  const inChannels = rule.channels === undefined ? '' : ' AND channel IN (SELECT value FROM json_each(?))';
  const channelParameters = rule.channels === undefined ? [] : [JSON.stringify(rule.channels)];
  const conditions = [`agent_id = ?${inChannels}`];
  const parameters: unknown[] = [agentId, ...channelParameters];
  if (rule.keepNewest !== undefined && rule.keepNewest > 0) {
    conditions.push(
      `id < (SELECT id FROM events WHERE agent_id = ?${inChannels} ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    parameters.push(agentId, ...channelParameters, rule.keepNewest - 1);
  }
  if (rule.olderThan !== undefined) {
    const json = readableJson('timeline_json');
    conditions.push(
      `coalesce(appended_at_ms, CASE WHEN json_type(${json}, '$.bookmark.timestamp') IN ('integer', 'real') ` +
        `THEN json_extract(${json}, '$.bookmark.timestamp') END) < ?`,
    );
    parameters.push(rule.olderThan);
  }
  return { where: conditions.join(' AND '), parameters };
}
