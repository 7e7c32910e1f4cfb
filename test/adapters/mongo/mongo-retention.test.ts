import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AGENT_SCHEMA_VERSION, MongoStore } from '../../../adapters/mongo/index.js';
import type { AgentInfo, Bookmark, Timeline } from '../../../src/types.js';
import { describeMongo, useTestDatabase, withAdminClient } from '../../helpers/mongo.js';

/**
 * Retention on MongoDB beyond the conformance cases (which run in
 * mongo-conformance.test.ts): the times the store records and the upgrade
 * that starts them for older databases, events stored before `appendedAt`
 * existed, an agent of unknown activity, the event-mode refusal, and what
 * `compact` reports.
 */

const PREFIX = 'kode_';
const DAY = 24 * 60 * 60 * 1000;

const info = (agentId: string): AgentInfo => ({
  agentId,
  templateId: 'tpl',
  createdAt: '2026-11-01T00:00:00.000Z',
  lineage: [],
  configVersion: 'v1',
  messageCount: 0,
  lastSfpIndex: -1,
  metadata: {},
});

const event = (seq: number, timestamp?: number): Timeline => ({
  cursor: seq,
  bookmark: timestamp === undefined ? ({ seq } as unknown as Bookmark) : { seq, timestamp },
  event: { channel: 'monitor', type: 'state_changed', state: 'WORKING' },
});

describeMongo('MongoStore retention', () => {
  const place = useTestDatabase('retention');
  let store: MongoStore;
  const open = (extra: Partial<ConstructorParameters<typeof MongoStore>[0]> = {}) =>
    new MongoStore({ uri: place.url, dbName: place.dbName, collectionPrefix: PREFIX, ...extra });
  const agents = <T>(body: (collection: import('mongodb').Collection) => Promise<T>) =>
    withAdminClient((client) => body(client.db(place.dbName).collection(`${PREFIX}agents`)));
  const events = <T>(body: (collection: import('mongodb').Collection) => Promise<T>) =>
    withAdminClient((client) => body(client.db(place.dbName).collection(`${PREFIX}events`)));

  beforeAll(async () => {
    store = open();
    await store.open();
  });
  afterAll(async () => {
    await store.close();
  });

  it('reports retention among its capabilities', () => {
    expect(store.capabilities.retention).toBe(true);
    expect(store.capabilities.reasons?.retention).toBeUndefined();
  });

  it("records every write's server time in the registry and each event's in its document", async () => {
    const before = Date.now();
    await store.saveInfo('times', info('times'));
    await store.appendEvent('times', event(1, 5));
    // Reading waits for the append's batch.
    for await (const _ of store.readEvents('times')) break;
    const registry = await agents((c) => c.findOne({ _id: 'times' as never }));
    const stored = await events((c) => c.findOne({ agentId: 'times' }));
    expect(registry?.lastWriteAt).toBeInstanceOf(Date);
    expect(stored?.appendedAt).toBeInstanceOf(Date);
    // The event's time is its batch's registration, which also moved the agent's last write.
    expect(stored?.appendedAt.getTime()).toBe(registry?.lastWriteAt.getTime());
    expect(registry?.lastWriteAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it('an upgrade starts each agent at its last saveInfo, or at the upgrade when it has no info', async () => {
    const prefix = 'upgrade_';
    const old = new MongoStore({ uri: place.url, dbName: place.dbName, collectionPrefix: prefix });
    await old.saveInfo('with-info', info('with-info'));
    await old.saveTodos('no-info', { todos: [], version: 1, updatedAt: 0 });
    await old.close();
    // As a database written before version 3: no times, version 2.
    const savedAt = Date.now() - 30 * DAY;
    await withAdminClient(async (client) => {
      const db = client.db(place.dbName);
      await db.collection(`${prefix}agents`).updateMany({}, { $unset: { lastWriteAt: '' } });
      await db
        .collection(`${prefix}infos`)
        .updateOne({ _id: 'with-info' as never }, { $set: { updatedAt: savedAt } });
      await db
        .collection(`${prefix}schema_version`)
        .updateOne({ _id: 'agent' as never }, { $set: { version: 2 } });
    });
    const upgradedAt = Date.now();
    const upgraded = new MongoStore({ uri: place.url, dbName: place.dbName, collectionPrefix: prefix });
    try {
      await upgraded.open();
      const docs = await withAdminClient((client) =>
        client.db(place.dbName).collection(`${prefix}agents`).find().sort({ _id: 1 }).toArray(),
      );
      expect(docs.map((doc) => doc._id)).toEqual(['no-info', 'with-info']);
      expect(docs[1]?.lastWriteAt.getTime()).toBe(savedAt);
      expect(docs[0]?.lastWriteAt.getTime()).toBeGreaterThanOrEqual(upgradedAt - 1000);
      const version = await withAdminClient((client) =>
        client
          .db(place.dbName)
          .collection(`${prefix}schema_version`)
          .findOne({ _id: 'agent' as never }),
      );
      expect(version?.version).toBe(AGENT_SCHEMA_VERSION);
      const result = await upgraded.prune({ inactiveBefore: Date.now() - DAY });
      expect(result.agents).toBe(1);
      expect(await upgraded.list()).toEqual(['no-info']);
    } finally {
      await upgraded.close();
    }
  });

  it('judges events stored before append times by their bookmark time, and keeps those without one', async () => {
    const id = 'legacy-events';
    const now = Date.now();
    await store.saveInfo(id, info(id));
    // 1: old bookmark, 2: no bookmark time, 3: recent bookmark; 4 and 5 keep
    // their append time (now), whatever their bookmark says.
    const later = now + 10 * DAY;
    for (const e of [event(1, now - 10 * DAY), event(2), event(3, later), event(4, later), event(5, later)]) {
      await store.appendEvent(id, e);
    }
    await events((c) =>
      c.updateMany({ agentId: id, bookmarkSeq: { $in: [1, 2, 3] } }, { $unset: { appendedAt: '' } }),
    );
    const policy = { prefix: id, events: { olderThan: now - DAY } };
    const dry = await store.prune(policy, { dryRun: true });
    expect(dry.events).toBe(1);
    expect(dry.bytes).toBe(Buffer.byteLength(JSON.stringify(event(1, now - 10 * DAY))));
    const real = await store.prune(policy);
    expect(real.events).toBe(1);
    expect(real.bytes).toBe(dry.bytes);
    const left: number[] = [];
    for await (const e of store.readEvents(id)) left.push(e.bookmark.seq);
    expect(left).toEqual([2, 3, 4, 5]);
    // A policy's date is capped at the prune's start: 4 and 5 were appended
    // before it and go; 3's bookmark is later, and 2 has no time at all.
    expect((await store.prune({ prefix: id, events: { olderThan: later } })).events).toBe(2);
    left.length = 0;
    for await (const e of store.readEvents(id)) left.push(e.bookmark.seq);
    expect(left).toEqual([2, 3]);
  });

  it('never judges an agent whose last write is unknown inactive', async () => {
    const id = 'unknown-activity';
    await store.saveInfo(id, info(id));
    await agents((c) => c.updateOne({ _id: id as never }, { $unset: { lastWriteAt: '' } }));
    const result = await store.prune({ prefix: id, inactiveBefore: Date.now() + DAY });
    expect(result).toMatchObject({ agents: 0, scannedAgents: 1 });
    expect(await store.exists(id)).toBe(true);
  });

  it('refuses to delete an agent whose events are in files from a database-mode store', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-mongo-retention-'));
    const id = 'files-agent';
    const hybrid = open({ eventStorage: 'file', fileStoreBaseDir: dir });
    try {
      await hybrid.saveInfo(id, info(id));
      await hybrid.appendEvent(id, event(1, 1));
      await hybrid.close();
      const error = await store
        .prune({ prefix: id, inactiveBefore: Date.now() + DAY })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'KODE_CONFIG', variable: 'KODE_STORE_EVENTS', agentId: id });
      expect(await store.exists(id)).toBe(true);
    } finally {
      await hybrid.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('compact changes nothing and reports the size of the store and what MongoDB can reuse', async () => {
    const result = await store.compact();
    expect(result.action).toMatch(/^nothing done: MongoDB reuses the space/);
    expect(result.bytesBefore).toBe(result.bytesAfter);
    expect(typeof result.bytesBefore).toBe('number');
    if (result.reclaimableBytes !== undefined) expect(result.reclaimableBytes).toBeGreaterThanOrEqual(0);
  });
});
