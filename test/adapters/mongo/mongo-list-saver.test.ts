import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../../adapters/mongo/index.js';
import { SavedListCache, savedTailItems } from '../../../adapters/mongo/mongo-list-saver.js';
import { pairFirstSavedTimes } from '../../../src/agent/record-fields.js';
import type { Message } from '../../../src/types.js';
import { describeMongo, requireMongoUrl, useTestDatabase } from '../../helpers/mongo.js';

/**
 * Incremental saves: the bounded cache and the per-agent write queue run
 * here; what the saves send to the server is checked against a server, by
 * watching the driver's command events.
 */

describe('SavedListCache', () => {
  it('returns what was set, and forgets an agent on delete', () => {
    const cache = new SavedListCache();
    cache.set('a', 'r1', ['x', 'y']);
    expect(cache.get('a')).toMatchObject({ revision: 'r1', texts: ['x', 'y'] });
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
    expect(cache.totalChars).toBe(0);
  });

  it('evicts the least recently used agent beyond its agent limit', () => {
    const cache = new SavedListCache(2, 1_000);
    cache.set('a', 'r', ['1']);
    cache.set('b', 'r', ['2']);
    cache.get('a');
    cache.set('c', 'r', ['3']);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
    expect(cache.size).toBe(2);
  });

  it('evicts by total characters, and never caches a list larger than the whole budget', () => {
    const cache = new SavedListCache(100, 10);
    cache.set('a', 'r', ['12345']);
    cache.set('b', 'r', ['123456']);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.totalChars).toBe(6);
    cache.set('huge', 'r', ['x'.repeat(11)]);
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.get('b')).toBeDefined();
  });

  it('replacing an agent entry keeps the character count exact', () => {
    const cache = new SavedListCache();
    cache.set('a', 'r1', ['abc']);
    cache.set('a', 'r2', ['abcdef', 'g']);
    expect(cache.totalChars).toBe(7);
    expect(cache.size).toBe(1);
  });
});

describe('pairFirstSavedTimes (the rewritten tail keeps the times of messages stored before)', () => {
  const NOW = 9_000;

  it('an empty stored tail (an append) stamps every new item now', () => {
    expect(pairFirstSavedTimes([], ['a', 'b'], NOW)).toEqual([NOW, NOW]);
  });

  it('a message inserted in the middle is the only one stamped now', () => {
    const old = [
      { json: 'm2', savedAt: 1 },
      { json: 'm3', savedAt: 2 },
    ];
    expect(pairFirstSavedTimes(old, ['NEW', 'm2', 'm3'], NOW)).toEqual([NOW, 1, 2]);
  });

  it('a summary replacing the head keeps the times of the messages after it', () => {
    const old = ['m0', 'm1', 'm2', 'm3'].map((json, i) => ({ json, savedAt: 10 + i }));
    expect(pairFirstSavedTimes(old, ['summary', 'm2', 'm3'], NOW)).toEqual([NOW, 12, 13]);
  });

  it('pairs equal texts occurrence by occurrence, in order; a surplus copy is new', () => {
    const old = [
      { json: 'a', savedAt: 1 },
      { json: 'b', savedAt: 2 },
      { json: 'a', savedAt: 3 },
    ];
    expect(pairFirstSavedTimes(old, ['h', 'a', 'b', 'a', 'a'], NOW)).toEqual([NOW, 1, 2, 3, NOW]);
  });

  it('each stored time is handed out at most once, and removed texts are simply not used', () => {
    const old = [
      { json: 'a', savedAt: 1 },
      { json: 'gone', savedAt: 2 },
    ];
    expect(pairFirstSavedTimes(old, ['a', 'a', 'b'], NOW)).toEqual([1, NOW, NOW]);
    expect(pairFirstSavedTimes(old, [], NOW)).toEqual([]);
  });
});

describe('savedTailItems (stored tail documents as the pairing takes them)', () => {
  const stored = ['m0', 'm1', 'm2'];

  it("takes each document's time with the stored text at its index", () => {
    expect(
      savedTailItems(
        stored,
        [
          { index: 1, createdAt: 5 },
          { index: 2, createdAt: 6 },
        ],
        'createdAt',
      ),
    ).toEqual([
      { json: 'm1', savedAt: 5 },
      { json: 'm2', savedAt: 6 },
    ]);
  });

  it('leaves out documents without a finite time or with an index outside the stored list', () => {
    const docs = [
      { index: 0 },
      { index: 1, createdAt: '5' },
      { index: 2, createdAt: Number.NaN },
      { index: 3, createdAt: 7 },
      { index: -1, createdAt: 7 },
      { index: 1.5, createdAt: 7 },
      { createdAt: 7 },
      { index: 2, createdAt: 8 },
    ];
    expect(savedTailItems(stored, docs, 'createdAt')).toEqual([{ json: 'm2', savedAt: 8 }]);
  });
});

function conversation(n: number, tag = 'm'): Message[] {
  return Array.from({ length: n }, (_, i) => ({
    role: i % 2 ? 'assistant' : 'user',
    content: [{ type: 'text', text: `${tag}-${i}` }],
  }));
}

describeMongo('incremental saves against a server', () => {
  const place = useTestDatabase('list_saver');
  let client: MongoClient;
  const commands: Array<{ name: string; collection: string; body: Record<string, unknown> }> = [];

  beforeAll(async () => {
    client = new MongoClient(requireMongoUrl(), { monitorCommands: true });
    client.on('commandStarted', (event) => {
      const body = event.command as Record<string, unknown>;
      commands.push({ name: event.commandName, collection: String(body[event.commandName]), body });
    });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
  });

  function sentTo(collection: string) {
    return commands.filter((c) => c.collection === collection);
  }

  it('a save that extends the conversation inserts only the new messages', async () => {
    const store = new MongoStore({ client, dbName: place.dbName });
    await store.saveMessages('grow', conversation(50));
    commands.length = 0;
    await store.saveMessages('grow', conversation(51));
    const inserts = sentTo('kode_messages').filter((c) => c.name === 'insert');
    expect(inserts.flatMap((c) => c.body.documents as unknown[])).toHaveLength(1);
    // The cache answered: the stored list was not read back.
    expect(sentTo('kode_messages').filter((c) => c.name === 'find')).toHaveLength(0);
    expect(await store.loadMessages('grow')).toEqual(conversation(51));
    await store.close();
  });

  it('a fresh store object reads the stored list once, then saves incrementally', async () => {
    const store = new MongoStore({ client, dbName: place.dbName });
    commands.length = 0;
    await store.saveMessages('grow', conversation(52));
    expect(sentTo('kode_messages').filter((c) => c.name === 'find')).toHaveLength(1);
    commands.length = 0;
    await store.saveMessages('grow', conversation(53));
    expect(sentTo('kode_messages').filter((c) => c.name === 'find')).toHaveLength(0);
    await store.close();
  });

  it('re-saving keeps the first-saved time of the messages already stored', async () => {
    const store = new MongoStore({ client, dbName: place.dbName });
    await store.saveMessages('times', conversation(2));
    const before = await client
      .db(place.dbName)
      .collection('kode_messages')
      .find({ agentId: 'times' })
      .sort({ index: 1 })
      .toArray();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await store.saveMessages('times', conversation(3));
    const after = await client
      .db(place.dbName)
      .collection('kode_messages')
      .find({ agentId: 'times' })
      .sort({ index: 1 })
      .toArray();
    expect(after.slice(0, 2).map((d) => d.createdAt)).toEqual(before.map((d) => d.createdAt));
    expect(after[2]?.createdAt).toBeGreaterThan(before[1]?.createdAt as number);
    await store.close();
  });

  it("an insert in the middle reads the stored tail's times once and re-stamps only the new message", async () => {
    const store = new MongoStore({ client, dbName: place.dbName });
    const messages = conversation(3);
    await store.saveMessages('middle', messages);
    const docs = () =>
      client
        .db(place.dbName)
        .collection('kode_messages')
        .find({ agentId: 'middle' })
        .sort({ index: 1 })
        .toArray();
    const before = await docs();
    await new Promise((resolve) => setTimeout(resolve, 5));
    commands.length = 0;
    const inserted: Message = { role: 'user', content: [{ type: 'text', text: 'inserted' }] };
    await store.saveMessages('middle', [messages[0] as Message, inserted, ...messages.slice(1)]);
    expect(sentTo('kode_messages').filter((c) => c.name === 'find')).toHaveLength(1);
    const after = await docs();
    expect(after.map((d) => d.createdAt)).toEqual([
      before[0]?.createdAt,
      expect.any(Number),
      before[1]?.createdAt,
      before[2]?.createdAt,
    ]);
    expect(after[1]?.createdAt).toBeGreaterThan(before[2]?.createdAt as number);
    await store.close();
  });

  it('the injected client stays open after the store closes', async () => {
    const store = new MongoStore({ client, dbName: place.dbName });
    await store.loadMessages('x');
    await store.close();
    await expect(client.db(place.dbName).command({ ping: 1 })).resolves.toMatchObject({ ok: 1 });
  });
});
