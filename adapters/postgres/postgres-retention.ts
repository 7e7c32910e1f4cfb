import type {
  AgentActivity,
  AgentScanQuery,
  EventPruneRule,
  PrunedRows,
  RemovedAgent,
  RetentionBackend,
} from '../../src/agent/agent-backend.js';
import type { AgentWriteQueue } from '../../src/agent/agent-write-queue.js';
import { DELETED_AGENT_RETENTION_MS } from '../../src/agent/deleted-agents.js';
import type { EventStorage } from '../../src/agent/event-storage.js';
import type { CompactResult } from '../../src/agent/retention.js';
import { eventModeMismatch } from '../../src/hybrid/event-modes.js';
import { columnKey } from './postgres-column-keys.js';
import type { PostgresConnection, Transaction } from './postgres-connection.js';
import { DatabaseEventStorage } from './postgres-database-events.js';
import { LIVE_AGENT, prefixConditions } from './postgres-registry.js';
import { AGENT_TABLES } from './postgres-schema.js';
import type { buildStatements } from './postgres-statements.js';

type AgentStatements = ReturnType<typeof buildStatements>;

/**
 * Removes everything of one agent inside `tx`, leaving its tombstone (and
 * dropping expired ones): what `delete` and retention's delete both do.
 * The agent row goes first: a save or an append in flight holds it until it
 * commits, and the next statements, with new snapshots, then see (and
 * delete) what it wrote; a later append finds the tombstone.
 */
export async function removeAgentRows(tx: Transaction, sql: AgentStatements, agentId: string): Promise<void> {
  const now = Date.now();
  await tx.query(sql.deleteAgent, [agentId, now - DELETED_AGENT_RETENTION_MS]);
  await tx.query(sql.writeTombstone, [agentId, now]);
  await tx.query(sql.deleteLists, [agentId]);
  await tx.query(sql.deleteEvents, [agentId]);
}

/** What rows returned by a DELETE ... RETURNING of their sizes held. */
function removedRows(rows: ReadonlyArray<{ bytes: number }>): PrunedRows {
  let bytes = 0;
  for (const row of rows) bytes += row.bytes;
  return { count: rows.length, bytes };
}

/** The parts of the agent backend retention works with. */
export interface PostgresRetentionParts {
  db: PostgresConnection;
  sql: AgentStatements;
  events: EventStorage;
  writes: AgentWriteQueue;
  /** Drops the cached message and tool-call lists of a removed agent. */
  forgetLists(agentId: string): void;
}

/**
 * The `RetentionBackend` part of the PostgreSQL agent backend (see
 * src/agent/agent-prune.ts): every removal is its own short transaction, and
 * an inactive agent's delete re-reads its last write under the registry row
 * lock that appends and saves also take.
 */
export class PostgresRetention implements RetentionBackend {
  private readonly db: PostgresConnection;
  private readonly sql: AgentStatements;
  private readonly events: EventStorage;
  private readonly writes: AgentWriteQueue;

  constructor(private readonly parts: PostgresRetentionParts) {
    this.db = parts.db;
    this.sql = parts.sql;
    this.events = parts.events;
    this.writes = parts.writes;
  }

  async scanAgents(query: AgentScanQuery): Promise<AgentActivity[]> {
    const values: unknown[] = [];
    const conditions = [LIVE_AGENT, ...prefixConditions(query.prefix, values)];
    if (query.templateId !== undefined) {
      values.push(columnKey(query.templateId));
      conditions.push(`info_json IS NOT NULL AND template_key = $${values.length}`);
    }
    if (query.after !== undefined) {
      values.push(query.after);
      conditions.push(`agent_id > $${values.length}`);
    }
    values.push(query.limit);
    const rows = await this.db.query<{ agent_id: string; last_write_ms: number | null }>(
      `SELECT agent_id, last_write_ms FROM ${this.db.table('kode_agents')}
        WHERE ${conditions.join(' AND ')} ORDER BY agent_id LIMIT $${values.length}`,
      values,
      true,
    );
    const activity: AgentActivity[] = [];
    for (const row of rows) {
      const fileWrittenAt = await this.events.lastWriteOutsideDatabase(row.agent_id);
      const known = row.last_write_ms;
      activity.push({
        agentId: row.agent_id,
        lastWriteMs:
          fileWrittenAt === undefined
            ? known
            : known === null
              ? fileWrittenAt
              : Math.max(known, fileWrittenAt),
      });
    }
    return activity;
  }

  deleteIfInactive(agentId: string, before: number, dryRun: boolean): Promise<RemovedAgent | undefined> {
    // In the agent's write queue, as delete: writes and appends made before land first.
    return this.writes.write(agentId, async () => {
      await this.events.idle();
      const fileWrittenAt = await this.events.lastWriteOutsideDatabase(agentId);
      if (fileWrittenAt !== undefined && fileWrittenAt >= before) return undefined;
      if (this.events instanceof DatabaseEventStorage && (await this.events.hasFileEvents(agentId))) {
        throw eventModeMismatch('file', { backend: 'postgres', operation: 'prune', agentId });
      }
      const removed = await this.db.transaction(async (tx) => {
        // The row lock makes a save or an append in flight commit first (its
        // last_write_ms is then read here) or wait and find the tombstone.
        const [row] = await tx.query<{ last_write_ms: number | null }>(
          `SELECT last_write_ms FROM ${this.db.table('kode_agents')} WHERE agent_id = $1 AND ${LIVE_AGENT}${dryRun ? '' : ' FOR UPDATE'}`,
          [agentId],
        );
        if (row === undefined || row.last_write_ms === null || row.last_write_ms >= before) return undefined;
        const [counts] = await tx.query<{
          messages: number;
          tool_calls: number;
          events: number;
          snapshots: number;
          bytes: number;
        }>(this.sql.removalCounts, [agentId]);
        if (!dryRun) await removeAgentRows(tx, this.sql, agentId);
        return {
          messages: counts?.messages ?? 0,
          toolCalls: counts?.tool_calls ?? 0,
          events: counts?.events ?? 0,
          snapshots: counts?.snapshots ?? 0,
          files: fileWrittenAt === undefined ? 0 : 1,
          bytes: counts?.bytes ?? 0,
        };
      });
      if (removed && !dryRun) {
        this.parts.forgetLists(agentId);
        await this.events.deleteOutsideDatabase(agentId);
      }
      return removed;
    });
  }

  async pruneEvents(agentId: string, rule: EventPruneRule, dryRun: boolean): Promise<PrunedRows> {
    // Hybrid mode: the event storage rewrites the agent's file.
    if (this.events.pruneEvents) return this.events.pruneEvents(agentId, rule, dryRun);
    await this.events.idle();
    const events = this.db.table('kode_events');
    const values: unknown[] = [agentId];
    const conditions = ['agent_id = $1'];
    if (rule.channels !== undefined) {
      values.push(rule.channels.map(columnKey));
      conditions.push(`channel_key = ANY($${values.length}::text[])`);
    }
    if (rule.keepNewest !== undefined && rule.keepNewest > 0) {
      values.push(rule.keepNewest - 1);
      // The id of the Nth newest event the rule considers; none when there are fewer.
      conditions.push(
        `id < (SELECT id FROM ${events} WHERE ${conditions.join(' AND ')} ORDER BY id DESC OFFSET $${values.length} LIMIT 1)`,
      );
    }
    if (rule.olderThan !== undefined) {
      values.push(rule.olderThan);
      conditions.push(
        `coalesce(appended_at_ms, CASE WHEN json_typeof(timeline_json::json #> '{bookmark,timestamp}') = 'number' ` +
          `THEN (timeline_json::json #>> '{bookmark,timestamp}')::double precision END) < $${values.length}`,
      );
    }
    const where = conditions.join(' AND ');
    if (dryRun) return this.countRows(events, 'timeline_json', where, values);
    values.push(rule.limit);
    const rows = await this.db.query<{ bytes: number }>(
      `DELETE FROM ${events} WHERE agent_id = $1 AND id IN (
        SELECT id FROM ${events} WHERE ${where} ORDER BY id LIMIT $${values.length})
        RETURNING octet_length(timeline_json) AS bytes`,
      values,
    );
    return removedRows(rows);
  }

  /** How many rows `where` names and the UTF-8 bytes of their `column`. */
  private async countRows(
    table: string,
    column: string,
    where: string,
    values: unknown[],
  ): Promise<PrunedRows> {
    const [row] = await this.db.query<PrunedRows>(
      `SELECT count(*)::int AS count, coalesce(sum(octet_length(${column})), 0)::float8 AS bytes
        FROM ${table} WHERE ${where}`,
      values,
      true,
    );
    return row ?? { count: 0, bytes: 0 };
  }

  async pruneSnapshots(agentId: string, keepNewest: number, dryRun: boolean): Promise<PrunedRows> {
    await this.writes.settled(agentId);
    const snapshots = this.db.table('kode_snapshots');
    const where =
      keepNewest === 0
        ? 'agent_id = $1'
        : `agent_id = $1 AND created_seq < (SELECT created_seq FROM ${snapshots} WHERE agent_id = $1 ORDER BY created_seq DESC OFFSET $2 LIMIT 1)`;
    const values = keepNewest === 0 ? [agentId] : [agentId, keepNewest - 1];
    if (dryRun) return this.countRows(snapshots, 'snapshot_json', where, values);
    const rows = await this.db.query<{ bytes: number }>(
      `DELETE FROM ${snapshots} WHERE ${where} RETURNING octet_length(snapshot_json) AS bytes`,
      values,
    );
    return removedRows(rows);
  }

  /**
   * PostgreSQL reuses the space of removed rows itself (autovacuum); a plain
   * VACUUM of the store's tables makes it reusable now without locking out
   * readers or writers. It gives the OS back only empty pages at a table's
   * end: the sizes say what was returned.
   */
  async compact(): Promise<CompactResult> {
    await this.events.idle();
    const size = async () => {
      const [row] = await this.db.query<{ size: number | null }>(this.sql.tableSizes, [
        this.db.schema,
        [...AGENT_TABLES],
      ]);
      return row?.size ?? undefined;
    };
    const bytesBefore = await size();
    for (const table of AGENT_TABLES) await this.db.query(`VACUUM ${this.db.table(table)}`);
    const bytesAfter = await size();
    return {
      ...(bytesBefore === undefined ? {} : { bytesBefore }),
      ...(bytesAfter === undefined ? {} : { bytesAfter }),
      action: "VACUUM of the store's tables: freed space is reusable by new rows",
    };
  }
}
