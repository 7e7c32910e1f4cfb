import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import { fixtureSample } from '../../../conformance/store/fixture-sample.js';
import type { Message, ToolCallRecord } from '../../../src/types.js';

/**
 * Writes queued together share one transaction (SqliteConnection's group
 * commit). Commits are counted in the WAL file itself: every transaction
 * ends with one commit frame, and with automatic checkpoints off the frames
 * stay in the file.
 */

let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'kode-sqlite-group-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function conversation(count: number, tag: string): Message[] {
  const source = fixtureSample.agents.flatMap((agent) => agent.messages);
  return Array.from({ length: count }, (_, i) => ({
    ...structuredClone(source[i % source.length]!),
    metadata: { transport: 'provider' as const, content_blocks: [{ type: 'text', text: `${tag}-${i}` }] },
  }));
}

function toolCalls(ids: string[]): ToolCallRecord[] {
  const source = fixtureSample.agents.flatMap((agent) => agent.toolCalls);
  return ids.map((id, i) => ({ ...structuredClone(source[i % source.length]!), id }));
}

/** The commit frames in the WAL file (frames of the current WAL generation only). */
function walCommits(path: string): number {
  const wal = readFileSync(`${path}-wal`);
  if (wal.length < 32) return 0;
  const pageSize = wal.readUInt32BE(8);
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  let commits = 0;
  for (let offset = 32; offset + 24 + pageSize <= wal.length; offset += 24 + pageSize) {
    if (wal.readUInt32BE(offset + 8) !== salt1 || wal.readUInt32BE(offset + 12) !== salt2) break;
    if (wal.readUInt32BE(offset + 4) !== 0) commits++;
  }
  return commits;
}

/** A store over an injected connection with automatic checkpoints off, opened and migrated. */
async function openStore() {
  const path = join(root, `g${++counter}.db`);
  const db = new Database(path);
  const store = new SqliteStore({ path, database: db });
  await store.list();
  db.pragma('wal_autocheckpoint = 0');
  return { store, db, path };
}

describe('SqliteStore: group commit', () => {
  it('commits saves of several agents made at once in one transaction', async () => {
    const { store, db, path } = await openStore();
    const before = walCommits(path);
    const agents = Array.from({ length: 8 }, (_, i) => `agent-${i}`);
    await Promise.all(agents.map((id) => store.saveMessages(id, conversation(5, id))));
    expect(walCommits(path) - before).toBe(1);
    for (const id of agents) expect(await store.loadMessages(id)).toEqual(conversation(5, id));
    await store.close();
    db.close();
  });

  it('commits each save on its own when they are awaited one by one', async () => {
    const { store, db, path } = await openStore();
    const before = walCommits(path);
    for (let i = 0; i < 3; i++) await store.saveMessages(`agent-${i}`, conversation(2, `m${i}`));
    expect(walCommits(path) - before).toBe(3);
    await store.close();
    db.close();
  });

  it('lets agents that keep saving while others do share commits', async () => {
    const { store, db, path } = await openStore();
    const before = walCommits(path);
    // Each agent awaits its own saves, as the SDK does; eight run side by side.
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const id = `pool-${i}`;
        await store.saveMessages(id, conversation(3, id));
        await store.saveToolCallRecords(id, toolCalls([`${id}-call`]));
        await store.saveInfo(id, { ...fixtureSample.agents[0]!.info, agentId: id });
      }),
    );
    expect(walCommits(path) - before).toBeLessThanOrEqual(6);
    for (let i = 0; i < 8; i++) {
      expect(await store.loadToolCallRecords(`pool-${i}`)).toEqual(toolCalls([`pool-${i}-call`]));
      expect((await store.loadInfo(`pool-${i}`))?.agentId).toBe(`pool-${i}`);
    }
    await store.close();
    db.close();
  });

  it('undoes only the changes of a write that fails in a shared transaction', async () => {
    const { store, db, path } = await openStore();
    // RAISE(ABORT) fails the statement and keeps the transaction: the save has
    // already written its agent row and first record when its second fails.
    db.exec(
      "CREATE TEMP TRIGGER refuse_boom BEFORE INSERT ON main.tool_calls WHEN NEW.call_id = 'boom' " +
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    );
    const before = walCommits(path);
    const results = await Promise.allSettled([
      store.saveMessages('kept-1', conversation(2, 'k1')),
      store.saveToolCallRecords('failed', toolCalls(['fine', 'boom'])),
      store.batchFork('no-such-agent', 1),
      store.saveMessages('kept-2', conversation(2, 'k2')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'KODE_NOT_FOUND' });
    expect(walCommits(path) - before).toBe(1);
    expect(await store.loadMessages('kept-1')).toEqual(conversation(2, 'k1'));
    expect(await store.loadMessages('kept-2')).toEqual(conversation(2, 'k2'));
    expect(await store.exists('failed')).toBe(false);
    expect(db.prepare("SELECT count(*) AS n FROM tool_calls WHERE agent_id = 'failed'").get()).toEqual({
      n: 0,
    });
    // The failed agent's next save starts from what is really stored.
    await store.saveToolCallRecords('failed', toolCalls(['fine']));
    expect(await store.loadToolCallRecords('failed')).toEqual(toolCalls(['fine']));
    await store.close();
    db.close();
  });

  it('runs the writes one by one when a failure rolls the shared transaction back', async () => {
    const { store, db } = await openStore();
    // RAISE(ROLLBACK) ends the whole transaction, taking the other writes' changes with it.
    db.exec(
      "CREATE TEMP TRIGGER rollback_boom BEFORE INSERT ON main.tool_calls WHEN NEW.call_id = 'boom' " +
        "BEGIN SELECT RAISE(ROLLBACK, 'rolled back by the test'); END",
    );
    const results = await Promise.allSettled([
      store.saveMessages('kept-1', conversation(2, 'k1')),
      store.saveToolCallRecords('failed', toolCalls(['fine', 'boom'])),
      store.saveMessages('kept-2', conversation(2, 'k2')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/rolled back by the test/);
    expect(await store.loadMessages('kept-1')).toEqual(conversation(2, 'k1'));
    expect(await store.loadMessages('kept-2')).toEqual(conversation(2, 'k2'));
    expect(await store.exists('failed')).toBe(false);
    await store.close();
    db.close();
  });

  it('keeps a conversation saved twice in one shared transaction consistent', async () => {
    const { store, db } = await openStore();
    const messages = conversation(6, 'twice');
    await store.saveMessages('twice', messages.slice(0, 2));
    // Both saves land in one transaction: the second must see the first's rows, not the cache.
    await Promise.all([
      store.saveMessages('twice', messages.slice(0, 4)),
      store.saveMessages('twice', [messages[0]!, ...messages.slice(3)]),
      store.saveMessages('other', conversation(1, 'o')),
    ]);
    expect(await store.loadMessages('twice')).toEqual([messages[0], ...messages.slice(3)]);
    await store.saveMessages('twice', messages);
    expect(await store.loadMessages('twice')).toEqual(messages);
    await store.close();
    db.close();
  });
});
