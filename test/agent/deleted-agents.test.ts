import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Collection } from 'mongodb';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../adapters/mongo/index.js';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { collect } from '../../conformance/runner/assertions.js';
import { DELETED_AGENT_RETENTION_MS } from '../../src/agent/deleted-agents.js';
import type { ExtendedStore, Timeline } from '../../src/types.js';
import { describeMongo, useTestDatabase, withAdminClient } from '../helpers/mongo.js';
import { adminQuery, describePostgres, useTestSchema } from '../helpers/postgres.js';

/**
 * The tombstone's bounded life (src/agent/deleted-agents.ts), which the conformance
 * suite cannot reach without waiting an hour: tombstones are aged in the
 * database by hand, then the store is asked again.
 */

function event(seq: number): Timeline {
  return {
    cursor: seq,
    bookmark: { seq, timestamp: 1_700_000_000_000 + seq },
    event: { channel: 'monitor', type: 'step_complete', step: seq } as unknown as Timeline['event'],
  };
}

interface Backend {
  store: ExtendedStore;
  /** Moves every tombstone of `agentId` back by more than the retention. */
  age(agentId: string): Promise<void>;
  /** Registry rows (live or tombstone) of `agentId`. */
  rows(agentId: string): Promise<number>;
}

function tombstoneRules(open: () => Promise<Backend>): void {
  it('discards events for a deleted id while its tombstone lives, and lets them register the id once it expired', async () => {
    const { store, age } = await open();
    await store.saveMessages('a', [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
    await store.delete('a');
    await store.appendEvent('a', event(1));
    expect(await store.exists('a')).toBe(false);
    await age('a');
    await store.appendEvent('a', event(2));
    expect(await store.exists('a')).toBe(true);
    expect(await store.list('a')).toEqual(['a']);
    expect(await collect(store.readEvents('a'))).toEqual([event(2)]);
  });

  it('prunes expired tombstones when another agent is deleted, and keeps live ones', async () => {
    const { store, age, rows } = await open();
    for (const id of ['old', 'young', 'next']) await store.appendEvent(id, event(1));
    await store.delete('old');
    await store.delete('young');
    await age('old');
    expect(await rows('old')).toBe(1);
    await store.delete('next');
    expect(await rows('old')).toBe(0);
    expect(await rows('young')).toBe(1);
    await store.appendEvent('young', event(2));
    expect(await store.exists('young')).toBe(false);
  });
}

describe('tombstones of deleted agents on SQLite', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  tombstoneRules(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-tombstones-'));
    dirs.push(dir);
    const path = join(dir, 'agents.db');
    const store = await new SqliteStore(path).open();
    const sql = (text: string, ...params: unknown[]) => {
      const db = new Database(path);
      try {
        const statement = db.prepare(text);
        if (statement.reader) return statement.all(...params);
        statement.run(...params);
        return [];
      } finally {
        db.close();
      }
    };
    return {
      store,
      age: async (id) => {
        sql(
          'UPDATE agents SET deleted_at_ms = deleted_at_ms - ? WHERE agent_id = ?',
          DELETED_AGENT_RETENTION_MS + 1,
          id,
        );
      },
      rows: async (id) => sql('SELECT 1 FROM agents WHERE agent_id = ?', id).length,
    };
  });
});

describePostgres('tombstones of deleted agents on PostgreSQL', () => {
  const place = useTestSchema('tombstones');
  const stores: ExtendedStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
  });
  let n = 0;
  tombstoneRules(async () => {
    const schema = place.also(`${place.schema}_${++n}`);
    const store = await new PostgresStore({ connection: place.url, schema }).open();
    stores.push(store);
    const table = `${pg.escapeIdentifier(schema)}.kode_agents`;
    return {
      store,
      age: async (id) => {
        await adminQuery(`UPDATE ${table} SET deleted_at_ms = deleted_at_ms - $1 WHERE agent_id = $2`, [
          DELETED_AGENT_RETENTION_MS + 1,
          id,
        ]);
      },
      rows: async (id) => (await adminQuery(`SELECT 1 FROM ${table} WHERE agent_id = $1`, [id])).length,
    };
  });
});

describeMongo('tombstones of deleted agents on MongoDB', () => {
  const place = useTestDatabase('tombstones');
  const stores: ExtendedStore[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  let n = 0;
  for (const hybrid of [false, true]) {
    describe(hybrid ? 'hybrid mode' : 'database mode', () => {
      tombstoneRules(async () => {
        const collectionPrefix = `t${++n}_`;
        const files = hybrid ? await mkdtemp(join(tmpdir(), 'kode-mongo-tombstones-')) : undefined;
        if (files) dirs.push(files);
        const store = await new MongoStore({
          uri: place.url,
          dbName: place.dbName,
          collectionPrefix,
          ...(files ? { eventStorage: 'file' as const, fileStoreBaseDir: files } : {}),
        }).open();
        stores.push(store);
        const agents = <T>(body: (collection: Collection<{ _id: string }>) => Promise<T>) =>
          withAdminClient((client) => body(client.db(place.dbName).collection(`${collectionPrefix}agents`)));
        return {
          store,
          age: async (id) => {
            await agents((collection) =>
              collection.updateOne({ _id: id }, { $inc: { deletedAt: -(DELETED_AGENT_RETENTION_MS + 1) } }),
            );
          },
          rows: (id) => agents((collection) => collection.countDocuments({ _id: id })),
        };
      });
    });
  }
});
