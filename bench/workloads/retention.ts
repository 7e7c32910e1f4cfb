import { copyFileSync, existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { AGENT_TABLES as POSTGRES_AGENT_TABLES } from '../../adapters/postgres/postgres-schema.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { AGENT_TABLES as SQLITE_AGENT_TABLES } from '../../adapters/sqlite/sqlite-agent-backend.js';
import type { RetentionStore } from '../../src/agent/retention.js';
import type { ExtendedStore } from '../../src/types.js';
import type { StoreLocation } from '../backends.js';
import type { BenchProfile } from '../bench-profile.js';
import type { Measurement } from '../bench-result.js';
import { agentInfo, timeline } from '../data.js';
import { timeMs } from '../measure.js';
import { type Workload, withFreshBackend } from '../workload.js';

/**
 * (r) Retention (issue 17): `store.prune` of the agents inactive since a
 * time against a raw `DELETE` of the same rows (one statement per table, one
 * transaction), and on SQLite the file's size before and after
 * `store.compact()` beside a fresh file holding only what remains.
 *
 * The agents stream their events at the same time, a group at a time, as a
 * process running many agents does: rows of different agents share pages,
 * so a prune that keeps one agent in `keepEvery` leaves pages partly
 * filled, which is what makes giving space back hard. The kept agents
 * write again after the prune's cut-off (their info), so they stay.
 */

/** How many agents, and how their events are written. */
export interface PrunedStoreShape {
  /** Agents the prune removes. */
  pruned: number;
  /** One agent in `keepEvery` is kept (so there are `pruned / (keepEvery - 1)` of them). */
  keepEvery: number;
  eventsPerAgent: number;
  /** Agents streaming at once: their events interleave in append order. */
  streaming: number;
}

/** The sizes of each profile: `large` is issue 17's 50,000 agents and 1,000,000 events. */
export function prunedStoreShape(profile: BenchProfile['name']): PrunedStoreShape {
  const pruned = profile === 'quick' ? 30 : profile === 'full' ? 5_000 : 50_000;
  const eventsPerAgent = profile === 'quick' ? 10 : 20;
  return { pruned, keepEvery: 11, eventsPerAgent, streaming: 50 };
}

function agentCount(shape: PrunedStoreShape): number {
  return shape.pruned + Math.floor(shape.pruned / (shape.keepEvery - 1));
}

function agentId(i: number): string {
  return `agent-${String(i).padStart(6, '0')}`;
}

/** Whether agent `i` stays. */
export function isKept(i: number, shape: PrunedStoreShape): boolean {
  return i % shape.keepEvery === 0;
}

/**
 * Writes the agents' info and events, `shape.streaming` agents at a time,
 * each group's events appended without awaiting (interleaved); `keptOnly`
 * writes just the agents that stay (the fresh file to compare with).
 */
export async function writeAgents(
  store: ExtendedStore,
  shape: PrunedStoreShape,
  keptOnly: boolean,
): Promise<void> {
  const total = agentCount(shape);
  for (let start = 0; start < total; start += shape.streaming) {
    const group: string[] = [];
    for (let i = start; i < Math.min(total, start + shape.streaming); i++) {
      if (!keptOnly || isKept(i, shape)) group.push(agentId(i));
    }
    await Promise.all(group.map((id) => store.saveInfo(id, agentInfo(id))));
    const appends: Promise<void>[] = [];
    for (let n = 1; n <= shape.eventsPerAgent; n++) {
      for (const id of group) appends.push(store.appendEvent(id, timeline(n)));
    }
    await Promise.all(appends);
  }
}

/**
 * Returns a time after every write so far, then writes the kept agents'
 * info again: a prune of the agents inactive since that time removes
 * exactly the others.
 */
export async function touchKeptAgents(store: ExtendedStore, shape: PrunedStoreShape): Promise<number> {
  const start = Date.now();
  while (Date.now() <= start) await new Promise((resume) => setTimeout(resume, 1));
  const cutoff = Date.now();
  while (Date.now() <= cutoff) await new Promise((resume) => setTimeout(resume, 1));
  const kept: string[] = [];
  for (let i = 0; i < agentCount(shape); i++) if (isKept(i, shape)) kept.push(agentId(i));
  await Promise.all(kept.map((id) => store.saveInfo(id, agentInfo(id))));
  return cutoff;
}

/** The database file's size on disk with its WAL. */
export function sqliteFileBytes(path: string): number {
  const wal = `${path}-wal`;
  return statSync(path).size + (existsSync(wal) ? statSync(wal).size : 0);
}

const MIB = 1024 * 1024;

/**
 * The raw baseline on SQLite: a copy of the file (taken before the prune),
 * where one `DELETE` per table removes the rows of the agents inactive
 * since `cutoff`, in one transaction, at the store's durability.
 */
async function sqliteRawDelete(copy: string, cutoff: number): Promise<number> {
  const db = new Database(copy);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const inactive = 'SELECT agent_id FROM agents WHERE last_write_ms < ?';
    return await timeMs(() => {
      db.exec('BEGIN IMMEDIATE');
      for (const table of SQLITE_AGENT_TABLES) {
        db.prepare(`DELETE FROM ${table} WHERE agent_id IN (${inactive})`).run(cutoff);
      }
      db.prepare('DELETE FROM agents WHERE last_write_ms < ?').run(cutoff);
      db.exec('COMMIT');
    });
  } finally {
    db.close();
  }
}

/**
 * The raw baseline on PostgreSQL: one `DELETE` per table of the rows of the
 * agents inactive since `cutoff`, in one transaction, rolled back so that
 * the prune then removes the same rows (PostgreSQL's commit of a delete is
 * one WAL flush; the work is in the statements).
 */
async function postgresRawDelete(location: Extract<StoreLocation, { kind: 'postgres' }>, cutoff: number) {
  const client = new pg.Client({ connectionString: location.url, application_name: 'kode-store-bench-raw' });
  await client.connect();
  try {
    const table = (name: string) => `${pg.escapeIdentifier(location.schema)}.${pg.escapeIdentifier(name)}`;
    const inactive = `SELECT agent_id FROM ${table('kode_agents')} WHERE last_write_ms < $1`;
    await client.query('BEGIN');
    const ms = await timeMs(async () => {
      for (const name of POSTGRES_AGENT_TABLES) {
        if (name === 'kode_agents') continue;
        await client.query(`DELETE FROM ${table(name)} WHERE agent_id IN (${inactive})`, [cutoff]);
      }
      await client.query(`DELETE FROM ${table('kode_agents')} WHERE last_write_ms < $1`, [cutoff]);
    });
    await client.query('ROLLBACK');
    return ms;
  } finally {
    await client.end();
  }
}

export const retentionWorkload: Workload = {
  id: 'r-retention',
  title: 'prune against a raw DELETE, and the SQLite file size after compact',
  touchesEvents: false,
  async run(context) {
    const family = context.backend.family;
    if (family === 'memory') {
      return {
        skipped: 'no raw driver to delete with, and no file to compact: the memory store is the reference',
      };
    }
    const shape = prunedStoreShape(context.profile.name);
    const events = shape.pruned * shape.eventsPerAgent;
    const label = `${shape.pruned.toLocaleString('en')} agents / ${events.toLocaleString('en')} events`;
    return withFreshBackend(context, 'retention', async ({ store, location }) => {
      context.phase(
        `writing ${agentCount(shape).toLocaleString('en')} agents, ${shape.streaming} streaming at once`,
      );
      await writeAgents(store, shape, false);
      const cutoff = await touchKeptAgents(store, shape);
      const retention = store as BenchStoreWithRetention;
      const results: Measurement[] = [];
      let rawMs: number;
      let sizes: { before: number; afterPrune: number; afterCompact: number; fresh: number } | undefined;
      if (location.kind === 'sqlite') {
        await store.close();
        const copy = `${location.path}.raw`;
        copyFileSync(location.path, copy);
        context.phase('raw DELETE of the same rows on a copy of the file');
        rawMs = await sqliteRawDelete(copy, cutoff);
        const reopened = new SqliteStore({ path: location.path });
        try {
          const before = sqliteFileBytes(location.path);
          context.phase(`prune ${label}`);
          const pruneMs = await timeMs(() => reopened.prune({ inactiveBefore: cutoff }));
          results.push(pruneResult(label, pruneMs, rawMs, 'raw: one DELETE per table in one transaction'));
          const afterPrune = sqliteFileBytes(location.path);
          context.phase('compact');
          let action = '';
          const compactMs = await timeMs(async () => {
            action = (await reopened.compact()).action;
          });
          await reopened.close();
          const afterCompact = sqliteFileBytes(location.path);
          results.push({
            metric: 'compact after the prune',
            value: compactMs,
            unit: 'ms',
            target: null,
            note: action,
          });
          context.phase('a fresh file holding only the kept agents');
          const freshPath = `${location.path}.fresh`;
          const fresh = new SqliteStore({ path: freshPath });
          await writeAgents(fresh, shape, true);
          await fresh.close();
          sizes = { before, afterPrune, afterCompact, fresh: sqliteFileBytes(freshPath) };
        } finally {
          await reopened.close();
        }
      } else {
        if (location.kind !== 'postgres') throw new Error(`no raw baseline for ${location.kind}`);
        context.phase('raw DELETE of the same rows (rolled back)');
        rawMs = await postgresRawDelete(location, cutoff);
        context.phase(`prune ${label}`);
        const pruneMs = await timeMs(() => retention.prune({ inactiveBefore: cutoff }));
        results.push(
          pruneResult(label, pruneMs, rawMs, 'raw: one DELETE per table in one transaction (rolled back)'),
        );
      }
      if (sizes) {
        const note = `${shape.pruned.toLocaleString('en')} of ${agentCount(shape).toLocaleString('en')} agents pruned`;
        results.push(
          { metric: 'file before the prune', value: sizes.before / MIB, unit: 'MiB', target: null, note },
          { metric: 'file after the prune', value: sizes.afterPrune / MIB, unit: 'MiB', target: null, note },
          {
            metric: 'file after compact()',
            value: sizes.afterCompact / MIB,
            unit: 'MiB',
            target: null,
            note,
          },
          {
            metric: 'file after compact() ÷ fresh file with what remains',
            value: sizes.afterCompact / sizes.fresh,
            unit: '×',
            target: { kind: 'max', limit: 1.1, unit: '×' },
            note: `fresh file: ${(sizes.fresh / MIB).toFixed(1)} MiB, the kept agents written the same way`,
          },
        );
      }
      return results;
    });
  },
};

type BenchStoreWithRetention = ExtendedStore & RetentionStore;

function pruneResult(label: string, pruneMs: number, rawMs: number, note: string): Measurement {
  // Each agent is its own short transaction (other agents keep working), so
  // no ratio target: the figure says what that costs against one big delete.
  return { metric: `prune ${label}`, value: pruneMs, unit: 'ms', raw: rawMs, target: null, note };
}
