import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../adapters/postgres/index.js';
import { SqliteStore } from '../adapters/sqlite/index.js';
import { SQLITE_JSON_MAX_DEPTH } from '../adapters/sqlite/sqlite-json.js';
import { nestedValue } from '../conformance/store/sample-data.js';
import { MemoryStore } from '../src/agent/memory-store.js';
import type { KodeStore } from '../src/config/create-extended-store.js';
import { MAX_JSON_DEPTH } from '../src/json-codec.js';
import type { Message } from '../src/types.js';
import {
  adminQuery,
  describePostgres,
  dropSchema,
  requirePostgresUrl,
  uniqueSchemaName,
} from './helpers/postgres.js';

/**
 * The depth limit at the stores (the conformance suite has the rule
 * itself): what the issue saw, per backend, and rows stored before the
 * limit existed, which must not make queries over other rows fail.
 */

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kode-depth-'));
  dirs.push(dir);
  return dir;
}

/** JSON text `depth` levels deep, as an older version could store it. */
const deepText = (depth: number) => JSON.stringify({ tag: 'old', inner: nestedValue(depth - 1) });

const message = (text: string): Message => ({ role: 'user', content: [{ type: 'text', text }] });

function refusalCases(name: string, open: () => Promise<KodeStore>): void {
  it(`${name}: KV values 1,001-50,000 levels deep are refused with a ValidationError naming the limit`, async () => {
    const store = await open();
    const { id } = await store.kv.createInstance({ name: 'depth' });
    for (const levels of [MAX_JSON_DEPTH + 1, 1_001, 3_999, 4_000, 50_000]) {
      const error = await store.kv.set(id, 'ns', 'k', nestedValue(levels)).catch((e: unknown) => e);
      expect(error, String(levels)).toMatchObject({ code: 'KODE_VALIDATION', name: 'ValidationError' });
      expect((error as Error).message).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
      await expect(
        store.kv.set(id, 'ns', 'k', 1, { metadata: { inner: nestedValue(levels - 1) } }),
        String(levels),
      ).rejects.toMatchObject({ code: 'KODE_VALIDATION' });
    }
    expect((await store.kv.query({ from: { instance: id } })).records).toEqual([]);
    await store.close();
  });

  it(`${name}: agent-store values deeper than the limit are refused; at the limit they are stored`, async () => {
    const store = await open();
    await store.saveInfo('agt', {
      agentId: 'agt',
      templateId: 't',
      createdAt: '2026-01-01T00:00:00.000Z',
      lineage: [],
      configVersion: 'v1',
      messageCount: 0,
      lastSfpIndex: -1,
      lastBookmark: { seq: 0, timestamp: 0 },
      metadata: nestedValue(MAX_JSON_DEPTH - 1),
    } as never);
    for (const levels of [MAX_JSON_DEPTH + 1, 2_000, 50_000]) {
      await expect(
        store.saveMessages('agt', [
          { role: 'user', content: [{ type: 'text', text: 'x', deep: nestedValue(levels) }] } as never,
        ]),
        String(levels),
      ).rejects.toMatchObject({ code: 'KODE_VALIDATION', operation: 'saveMessages', agentId: 'agt' });
      await expect(
        store.appendEvent('agt', {
          cursor: 1,
          bookmark: { seq: 1, timestamp: 1 },
          event: { channel: 'monitor', type: 'x', deep: nestedValue(levels) },
        } as never),
        String(levels),
      ).rejects.toMatchObject({ code: 'KODE_VALIDATION', operation: 'appendEvent' });
    }
    expect((await store.loadInfo('agt'))?.metadata).toEqual(nestedValue(MAX_JSON_DEPTH - 1));
    expect(await store.loadMessages('agt')).toEqual([]);
    await store.close();
  });
}

describe('depth on memory', () => {
  refusalCases('memory', async () => new MemoryStore() as unknown as KodeStore);
});

describe('depth on SQLite', () => {
  refusalCases('sqlite', async () => new SqliteStore({ path: join(await tempDir(), 'agents.db') }).open());

  it(`a KV row stored deeper than SQLite's JSON functions read (${SQLITE_JSON_MAX_DEPTH}) breaks no query, in its namespace or the instance`, async () => {
    const path = join(await tempDir(), 'agents.db');
    const store = await new SqliteStore({ path }).open();
    const { id } = await store.kv.createInstance({ name: 'old-rows' });
    const other = await store.kv.createInstance({ name: 'neighbour' });
    await store.kv.set(id, 'ns', 'deep', { tag: 'placeholder' }, { metadata: { tag: 'placeholder' } });
    await store.kv.set(id, 'ns', 'a', { tag: 'a', n: 1 }, { metadata: { tag: 'a' } });
    await store.kv.set(id, 'other', 'b', { tag: 'b', n: 2 }, { metadata: { tag: 'b' } });
    await store.kv.set(other.id, 'ns', 'c', { tag: 'c', n: 3 });
    // What an older version accepted: 1,001-3,999 levels.
    const raw = new Database(path);
    raw
      .prepare("UPDATE kode_kv_records SET value = ?, metadata = ? WHERE key = 'deep'")
      .run(deepText(2_000), deepText(3_999));
    raw.close();

    const keys = async (query: Parameters<KodeStore['kv']['query']>[0]) =>
      (await store.kv.query(query)).records.map((record) => record.key);
    expect(
      await keys({
        from: { instance: id, namespace: 'ns' },
        where: [{ field: 'value.tag', operator: 'eq', value: 'a' }],
      }),
    ).toEqual(['a']);
    expect(
      await keys({ from: { instance: id }, where: [{ field: 'value.n', operator: 'gte', value: 1 }] }),
    ).toEqual(['a', 'b']);
    expect(
      await keys({
        from: { instance: id },
        where: [{ field: 'metadata.tag', operator: 'exists', value: true }],
      }),
    ).toEqual(['a', 'b']);
    expect(
      await keys({ from: { instance: id }, orderBy: { field: 'value.n', direction: 'desc' } }),
    ).toHaveLength(3);
    expect(
      await keys({
        from: { instance: other.id },
        where: [{ field: 'value.tag', operator: 'eq', value: 'c' }],
      }),
    ).toEqual(['c']);
    // The row itself still reads back whole.
    expect((await store.kv.get(id, 'ns', 'deep')).value).toEqual(JSON.parse(deepText(2_000)));
    await store.close();
  });

  it('checkConsistency judges a message 2,000 levels deep by our parser: consistent; a row that does not parse is still reported', async () => {
    const path = join(await tempDir(), 'agents.db');
    const store = await new SqliteStore({ path }).open();
    await store.saveMessages('agt', [message('one'), message('two'), message('three')]);
    const raw = new Database(path);
    const update = raw.prepare('UPDATE messages SET message_json = ? WHERE agent_id = ? AND position = ?');
    update.run(deepText(2_000), 'agt', 1);
    raw.close();
    expect(await store.checkConsistency('agt')).toMatchObject({ consistent: true, issues: [] });
    expect((await store.loadMessages('agt'))[1]).toEqual(JSON.parse(deepText(2_000)));

    const again = new Database(path);
    again
      .prepare('UPDATE messages SET message_json = ? WHERE agent_id = ? AND position = ?')
      .run('{"role": "us', 'agt', 2);
    again.close();
    const check = await store.checkConsistency('agt');
    expect(check.consistent).toBe(false);
    expect(check.issues).toEqual(['messages: 1 rows hold JSON that does not parse']);
    await store.close();
  });
});

describePostgres('depth on PostgreSQL', () => {
  const schema = uniqueSchemaName('depth');
  afterAll(() => dropSchema(schema));
  const open = () => new PostgresStore({ connection: requirePostgresUrl(), schema }).open();

  refusalCases('postgres', open);

  it('a KV row stored 3,999 levels deep by an older version breaks no query', async () => {
    const store = await open();
    const { id } = await store.kv.createInstance({ name: 'old-rows-pg' });
    await store.kv.set(id, 'ns', 'deep', { tag: 'placeholder' }, { metadata: { tag: 'placeholder' } });
    await store.kv.set(id, 'ns', 'a', { tag: 'a', n: 1 }, { metadata: { tag: 'a' } });
    await store.kv.set(id, 'other', 'b', { tag: 'b', n: 2 });
    await adminQuery(`UPDATE ${schema}.kode_kv_records SET value = $1, metadata = $2 WHERE key = 'deep'`, [
      deepText(3_999),
      deepText(3_999),
    ]);
    const keys = async (query: Parameters<KodeStore['kv']['query']>[0]) =>
      (await store.kv.query(query)).records.map((record) => record.key);
    expect(
      await keys({
        from: { instance: id, namespace: 'ns' },
        where: [{ field: 'value.tag', operator: 'eq', value: 'a' }],
      }),
    ).toEqual(['a']);
    expect(
      await keys({ from: { instance: id }, where: [{ field: 'value.n', operator: 'gte', value: 1 }] }),
    ).toEqual(['a', 'b']);
    expect(
      await keys({
        from: { instance: id },
        where: [{ field: 'metadata.tag', operator: 'eq', value: 'old' }],
      }),
    ).toEqual(['deep']);
    // Compared as text: a recursive deep-equality check would overflow the stack at this depth.
    expect(JSON.stringify((await store.kv.get(id, 'ns', 'deep')).value)).toBe(deepText(3_999));
    await store.close();
  });
});
