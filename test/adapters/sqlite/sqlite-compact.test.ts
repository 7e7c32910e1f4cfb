import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import {
  type PrunedStoreShape,
  sqliteFileBytes,
  touchKeptAgents,
  writeAgents,
} from '../../../bench/workloads/retention.js';
import { timeline } from '../../../conformance/store/sample-data.js';
import { tempDir } from '../../bin/cli-support.js';

/**
 * Issue 17: an SQLite file that held many pruned events shrinks, after
 * `compact()`, to within 10 % of a fresh file holding only what remains.
 * The agents stream at once, so each page holds rows of several agents and a
 * prune that keeps one in eleven leaves most pages partly filled: freeing
 * empty pages alone left such a file 25 % larger than a fresh one. 100,000
 * events here; the bench (`r-retention`, `--large`) measures 1,000,000 the
 * same way, and the relation does not depend on the count.
 */

const SHAPE: PrunedStoreShape = { pruned: 1_000, keepEvery: 11, eventsPerAgent: 100, streaming: 50 };
// Commits without fsync: what is measured is the file's layout, not durability.
const DURABILITY = 'normal' as const;

let scratch: { dir: string; remove: () => Promise<void> };
let freshBytes: number;

beforeAll(async () => {
  scratch = await tempDir('kode-sqlite-compact-');
  const fresh = new SqliteStore({ path: join(scratch.dir, 'fresh.db'), durability: DURABILITY });
  await writeAgents(fresh, SHAPE, true);
  await fresh.close();
  freshBytes = sqliteFileBytes(join(scratch.dir, 'fresh.db'));
}, 120_000);
afterAll(() => scratch.remove());

/** Fills `path` with every agent, prunes all but the kept ones, and returns the open store. */
async function prunedStore(path: string): Promise<SqliteStore> {
  const store = new SqliteStore({ path, durability: DURABILITY });
  await writeAgents(store, SHAPE, false);
  const cutoff = await touchKeptAgents(store, SHAPE);
  const pruned = await store.prune({ inactiveBefore: cutoff });
  expect(pruned.agents).toBe(SHAPE.pruned);
  expect(pruned.events).toBe(SHAPE.pruned * SHAPE.eventsPerAgent);
  return store;
}

describe('compact() after a prune of agents that streamed at once', () => {
  it('rewrites an incremental auto-vacuum file its prune left half-filled, to within 10 % of a fresh one', async () => {
    const path = join(scratch.dir, 'incremental.db');
    const store = await prunedStore(path);
    const result = await store.compact();
    expect(result.action).toMatch(/^rewritten \(VACUUM\)/);
    expect(result.bytesAfter).toBeLessThan(result.bytesBefore! / 5);
    expect(result.reclaimableBytes).toBe(0);
    await store.close();
    expect(sqliteFileBytes(path)).toBeLessThanOrEqual(freshBytes * 1.1);
  }, 180_000);

  it('converts a file made without incremental auto-vacuum with { full: true }, to within 10 % of a fresh one', async () => {
    const path = join(scratch.dir, 'old-format.db');
    // Written before kode-store chose incremental auto-vacuum: any page makes the choice final.
    const old = new Database(path);
    old.pragma('user_version = 1');
    old.close();
    const store = await prunedStore(path);
    const untouched = await store.compact();
    expect(untouched.action).toMatch(/^nothing done/);
    expect(untouched.bytesAfter).toBe(untouched.bytesBefore);
    const full = await store.compact({ full: true });
    expect(full.action).toMatch(/now uses incremental auto-vacuum/);
    await store.close();
    expect(sqliteFileBytes(path)).toBeLessThanOrEqual(freshBytes * 1.1);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('auto_vacuum', { simple: true })).toBe(2);
    db.close();
  }, 180_000);
});

describe('compact() without a prune that left pages half-filled', () => {
  it('does not rewrite a file written by appends, whose pages are packed already', async () => {
    const store = new SqliteStore({ path: join(scratch.dir, 'fresh.db'), durability: DURABILITY });
    const result = await store.compact();
    await store.close();
    expect(result.action).toMatch(/^incremental vacuum/);
  });

  it('only frees pages after a prune that emptied whole pages, and ends within 10 % of a fresh file', async () => {
    const path = join(scratch.dir, 'contiguous.db');
    const freshPath = join(scratch.dir, 'contiguous-fresh.db');
    const big = 'lorem ipsum '.repeat(40);
    const write = async (store: SqliteStore, agentId: string) => {
      const appends: Promise<void>[] = [];
      for (let seq = 1; seq <= 3_000; seq++) {
        appends.push(store.appendEvent(agentId, timeline(seq, 'progress', { delta: big })));
      }
      await Promise.all(appends);
    };
    // One agent after the other: the pruned agent's rows fill pages of their own.
    const store = new SqliteStore({ path, durability: DURABILITY });
    await write(store, 'gone');
    await write(store, 'kept');
    await store.prune({ events: { keepNewest: 0 }, prefix: 'gone' });
    const result = await store.compact();
    expect(result.action).toMatch(/^incremental vacuum/);
    await store.close();
    const fresh = new SqliteStore({ path: freshPath, durability: DURABILITY });
    await write(fresh, 'kept');
    await fresh.close();
    expect(sqliteFileBytes(path)).toBeLessThanOrEqual(sqliteFileBytes(freshPath) * 1.1);
  }, 120_000);
});
