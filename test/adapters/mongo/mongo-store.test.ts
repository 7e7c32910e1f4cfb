import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Document, MongoClient } from 'mongodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_SCHEMA_VERSION, MongoStore } from '../../../adapters/mongo/index.js';
import { resolveMongoStoreOptions } from '../../../adapters/mongo/mongo-config.js';
import {
  deploymentFromHello,
  MongoConnection,
  type MongoDeployment,
} from '../../../adapters/mongo/mongo-connection.js';
import { DatabaseEventStorage } from '../../../adapters/mongo/mongo-database-events.js';
import {
  bsonSize,
  MAX_DOCUMENT_BYTES,
  MAX_STORED_DOCUMENT_BYTES,
  toInfoDocument,
} from '../../../adapters/mongo/mongo-documents.js';
import {
  type FindPlan,
  messageQueryPlan,
  sessionQueryPlan,
  toolCallQueryPlan,
} from '../../../adapters/mongo/mongo-queries.js';
import { nextPageLimit } from '../../../src/agent/paged-iterable.js';
import {
  normalizeMessageFilters,
  normalizeSessionFilters,
  normalizeToolCallFilters,
} from '../../../src/agent/query-filters.js';
import { sessionFields } from '../../../src/agent/record-fields.js';
import { wrapDriverError } from '../../../src/errors.js';
import { encodeJson } from '../../../src/json-codec.js';
import type { Message, Timeline, ToolCallRecord } from '../../../src/types.js';
import { describeMongo, describeMongoWith, useTestDatabase, withAdminClient } from '../../helpers/mongo.js';

/**
 * MongoStore as a whole. The first block needs no server: it points the store
 * at a port where nothing listens and checks that every failure arrives as a
 * typed, rejected promise, that bad input is refused before any connection
 * attempt, and that hybrid mode's event files work without the database. The
 * second block needs a server.
 */

/** Nothing listens on port 1; a short server selection timeout keeps the test quick. */
const UNREACHABLE = 'mongodb://kode:s3cret-pw@127.0.0.1:1/unreachable?serverSelectionTimeoutMS=300';

const message: Message = { role: 'user', content: [{ type: 'text', text: 'hello' }] };
const timeline = (seq: number): Timeline => ({
  cursor: seq,
  bookmark: { seq, timestamp: 1_795_361_537_000 + seq },
  event: { channel: 'monitor', type: 'state_changed', state: 'WORKING' },
});

describe('MongoStore without a reachable server', () => {
  // A stray rejection is kept with when it arrived (in which test, after
  // which), so that one coming late is not blamed on the next test alone.
  const unhandled: { arrived: string; reason: unknown }[] = [];
  let phase = 'before the first test';
  let previous: string | undefined;
  const onUnhandled = (reason: unknown) => unhandled.push({ arrived: phase, reason });
  let store: MongoStore;

  /** Every stray rejection not yet reported: none may be left. */
  async function expectNoStrayRejection(): Promise<void> {
    // Node reports an unhandled rejection once the microtasks of the turn
    // that rejected it have run; one macrotask turn later, every rejection
    // made so far has been reported.
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled.splice(0)).toEqual([]);
  }

  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    // What arrived after the last test's check; anything later still fails
    // the run, in vitest's own report of unhandled rejections.
    await expectNoStrayRejection();
    process.off('unhandledRejection', onUnhandled);
  });
  beforeEach(({ task }) => {
    phase = previous === undefined ? `during "${task.name}"` : `during "${task.name}", after "${previous}"`;
    store = new MongoStore({ uri: UNREACHABLE });
  });
  afterEach(async ({ task }) => {
    // close() resolves once the driver's client is closed: nothing of this store runs after it.
    await store.close();
    try {
      await expectNoStrayRejection();
    } finally {
      previous = task.name;
      phase = `after "${task.name}" had finished`;
    }
  });

  it('construction connects nothing; the first operation rejects with ConnectionError, and so does the next', async () => {
    const first = await store.loadMessages('agent').catch((e: unknown) => e);
    expect(first).toMatchObject({
      code: 'KODE_CONNECTION',
      backend: 'mongo',
      operation: 'loadMessages',
      agentId: 'agent',
    });
    // The failed attempt is not remembered: the next call tries again (and fails again).
    await expect(store.saveInfo('agent', { agentId: 'agent' } as never)).rejects.toMatchObject({
      code: 'KODE_CONNECTION',
    });
    await expect(store.open()).rejects.toMatchObject({ code: 'KODE_CONNECTION' });
  });

  it('error messages never contain the password from the URI', async () => {
    const error = (await store.list().catch((e: unknown) => e)) as Error;
    expect(error.message).not.toContain('s3cret-pw');
    const health = await store.healthCheck();
    expect(health.database.error ?? '').not.toContain('s3cret-pw');
  });

  it('a burst of un-awaited appends all reject with ConnectionError; none hangs', async () => {
    const appends = Array.from({ length: 20 }, (_, i) => store.appendEvent('agent', timeline(i)));
    const results = await Promise.allSettled(appends);
    expect(
      results.every(
        (r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'KODE_CONNECTION',
      ),
    ).toBe(true);
  });

  it('healthCheck resolves and reports the database unreachable instead of rejecting', async () => {
    const health = await store.healthCheck();
    expect(health).toMatchObject({
      healthy: false,
      database: { connected: false },
      fileSystem: { writable: true },
    });
    expect(health.database.error).toMatch(/ECONNREFUSED|connect/i);
  });

  it('bad input is refused before any connection attempt (ValidationError or QueryError, not ConnectionError)', async () => {
    const validation = { code: 'KODE_VALIDATION' };
    await expect(
      store.saveMessages('agent', [{ role: 'user', content: [{ type: 'text', text: 10n }] } as never]),
    ).rejects.toMatchObject(validation);
    await expect(store.saveMessages('agent', 'nope' as never)).rejects.toMatchObject(validation);
    await expect(store.appendEvent('agent', null as never)).rejects.toMatchObject(validation);
    await expect(store.saveInfo('agent', [] as never)).rejects.toMatchObject(validation);
    await expect(store.saveSnapshot('agent', { id: 7 } as never)).rejects.toMatchObject(validation);
    // Never reaches a filter, where an object would be read as query operators: no such snapshot.
    await expect(store.loadSnapshot('agent', { $ne: null } as never)).resolves.toBeUndefined();
    await expect(store.loadMessages(undefined as never)).rejects.toMatchObject(validation);
    await expect(store.loadMessages('a\u0000b')).rejects.toMatchObject(validation);
    await expect(store.list(5 as never)).rejects.toMatchObject(validation);
    await expect(store.batchFork('agent', -1)).rejects.toMatchObject(validation);
    await expect(store.acquireAgentLock('agent', -1)).rejects.toMatchObject(validation);
    await expect(store.queryMessages({ sortBy: 'id' as never })).rejects.toMatchObject({
      code: 'KODE_QUERY',
    });
    const read = async () => {
      for await (const entry of store.readEvents('agent', { since: { seq: 'x' } as never })) void entry;
    };
    await expect(read()).rejects.toMatchObject(validation);
  });

  it('before connecting, transactions are reported missing with the reason', () => {
    expect(store.capabilities).toMatchObject({
      crossInstanceLocks: true,
      crossProcessLocks: true,
      transactions: false,
      fileEvents: false,
    });
    expect(store.capabilities.reasons?.transactions).toMatch(/connect/);
  });

  it('after close every call rejects with StoreClosedError, and close is idempotent', async () => {
    await Promise.all([store.close(), store.close()]);
    await expect(store.loadMessages('agent')).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    await expect(store.open()).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    await expect(store.healthCheck()).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
    const read = async () => {
      for await (const entry of store.readEvents('agent')) void entry;
    };
    await expect(read()).rejects.toMatchObject({ code: 'KODE_STORE_CLOSED' });
  });
});

describe('MongoStore hybrid mode without a reachable server', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kode-mongo-offline-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("while the database is down, a new agent's events are refused typed (its registry must say it was not deleted) and no file is made", async () => {
    const store = new MongoStore({ uri: UNREACHABLE, eventStorage: 'file', fileStoreBaseDir: dir });
    expect(store.capabilities.fileEvents).toBe(true);
    const results = await Promise.allSettled(
      [timeline(1), timeline(2)].map((entry) => store.appendEvent('a/b', entry)),
    );
    for (const result of results) {
      expect(result).toMatchObject({
        status: 'rejected',
        reason: { code: 'KODE_CONNECTION', agentId: 'a/b' },
      });
    }
    expect(await readdir(dir)).toEqual([]);
    await expect(store.exists('a/b')).rejects.toMatchObject({ code: 'KODE_CONNECTION' });
    const health = await store.healthCheck();
    expect(health.fileSystem).toEqual({ writable: true });
    await store.close();
  });
});

// ---- with a server -----------------------------------------------------------

/** Every `stage` named anywhere in an explain output (classic and slot-based plans nest differently). */
function planStages(explain: unknown, into: string[] = []): string[] {
  if (Array.isArray(explain)) for (const item of explain) planStages(item, into);
  else if (typeof explain === 'object' && explain !== null) {
    for (const [key, value] of Object.entries(explain)) {
      if (key === 'stage' && typeof value === 'string') into.push(value);
      else if (key !== 'rejectedPlans') planStages(value, into);
    }
  }
  return into;
}

describeMongo('MongoStore against a server', () => {
  const place = useTestDatabase('store');
  let deployment: MongoDeployment;
  let store: MongoStore;

  beforeAll(async () => {
    deployment = await withAdminClient(async (client) =>
      deploymentFromHello(await client.db('admin').command({ hello: 1 })),
    );
    store = new MongoStore({ uri: place.url, dbName: place.dbName });
    await store.open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('declares transactions exactly when the deployment has them', () => {
    expect(store.capabilities.transactions).toBe(deployment.transactions);
  });

  it('healthCheck reports unhealthy, naming the database and collections, when the collections were dropped under a running store', async () => {
    const dbName = place.also(`${place.dbName}_health`);
    const dropped = await new MongoStore({ uri: place.url, dbName }).open();
    try {
      expect((await dropped.healthCheck()).healthy).toBe(true);
      await withAdminClient((client) => client.db(dbName).dropDatabase());
      const health = await dropped.healthCheck();
      expect(health.healthy).toBe(false);
      expect(health.database.connected).toBe(true);
      expect(health.database.error).toContain(dbName);
      expect(health.database.error).toContain('kode_agents');
    } finally {
      await dropped.close();
    }
  });

  it('records its schema version, and refuses a database written by a newer version', async () => {
    const versions = await withAdminClient((client) =>
      client.db(place.dbName).collection('kode_schema_version').find().toArray(),
    );
    expect(versions).toEqual([{ _id: 'agent', version: AGENT_SCHEMA_VERSION }]);
    const prefix = 'future_';
    await withAdminClient((client) =>
      client
        .db(place.dbName)
        .collection<{ _id: string; version: number }>(`${prefix}schema_version`)
        .insertOne({ _id: 'agent', version: AGENT_SCHEMA_VERSION + 1 }),
    );
    const newer = new MongoStore({ uri: place.url, dbName: place.dbName, collectionPrefix: prefix });
    await expect(newer.loadMessages('a')).rejects.toMatchObject({ code: 'KODE_CONFIG' });
    await newer.close();
  });

  it('stores each message as one document holding its JSON text beside the query fields', async () => {
    const stored: Message = {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 't', name: 'n', input: { 'a.b': 1, $x: 2 } }],
    };
    await store.saveMessages('raw', [message, stored]);
    const docs = await withAdminClient((client) =>
      client
        .db(place.dbName)
        .collection('kode_messages')
        .find({ agentId: 'raw' })
        .sort({ index: 1 })
        .toArray(),
    );
    expect(docs.map((d) => [d.index, d.role, d.contentTypes, d.json])).toEqual([
      [0, 'user', ['text'], encodeJson(message, 'strict')],
      [1, 'assistant', ['tool_use'], encodeJson(stored, 'strict')],
    ]);
  });

  it('two collection prefixes in one database are separate stores', async () => {
    const other = new MongoStore({ uri: place.url, dbName: place.dbName, collectionPrefix: 'other_' });
    await store.saveMessages('shared-id', [message]);
    expect(await other.loadMessages('shared-id')).toEqual([]);
    expect(await other.exists('shared-id')).toBe(false);
    await other.close();
  });

  it('requireTransactions is refused with UnsupportedError exactly on a deployment without transactions', async () => {
    const strict = new MongoStore({ uri: place.url, dbName: place.dbName, requireTransactions: true });
    if (deployment.transactions) await expect(strict.loadMessages('a')).resolves.toEqual([]);
    else await expect(strict.loadMessages('a')).rejects.toMatchObject({ code: 'KODE_UNSUPPORTED' });
    await strict.close();
  });

  it('hybrid mode: checkConsistency reports an event file that went missing, not a fork that never had one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-mongo-hybrid-check-'));
    const hybrid = new MongoStore({
      uri: place.url,
      dbName: place.dbName,
      eventStorage: 'file',
      fileStoreBaseDir: dir,
    });
    await hybrid.saveMessages('files', [message]);
    await hybrid.appendEvent('files', timeline(1));
    expect((await hybrid.checkConsistency('files')).issues).toEqual([]);
    const [fork] = await hybrid.batchFork('files', 1);
    expect((await hybrid.checkConsistency(fork as string)).issues).toEqual([]);
    await rm(dir, { recursive: true, force: true });
    const report = await hybrid.checkConsistency('files');
    expect(report.consistent).toBe(false);
    expect(report.issues.join('\n')).toContain('file is missing');
    await hybrid.close();
  });

  describe('readEvents pages', () => {
    it('pages ask for as many events as fit in pageBytes at the sizes seen, and end on bytes', async () => {
      const client = new MongoClient(place.url, { monitorCommands: true });
      const asked: number[] = [];
      const replies: number[][] = [];
      client.on('commandStarted', (event) => {
        if (event.commandName === 'find' && event.command.find === 'kode_events') {
          asked.push(Number(event.command.limit));
        }
      });
      client.on('commandSucceeded', (event) => {
        const reply = event.reply as { cursor?: { ns?: string; firstBatch?: Array<{ json?: string }> } };
        if (event.commandName !== 'find' || !reply.cursor?.ns?.endsWith('.kode_events')) return;
        replies.push((reply.cursor.firstBatch ?? []).map((doc) => doc.json?.length ?? 0));
      });
      const connection = new MongoConnection(resolveMongoStoreOptions({ client, dbName: place.dbName }));
      const events = new DatabaseEventStorage(() => connection.open(), wrapDriverError, 50, 20_000);
      const padded = (seq: number, size: number): Timeline => ({
        ...timeline(seq),
        event: {
          channel: 'monitor',
          type: 'state_changed',
          state: 'WORKING',
          pad: 'p'.repeat(size),
        } as never,
      });
      // Small events, then large ones: the page that meets them ends on bytes, later pages ask for fewer.
      const sizes = [...Array.from({ length: 60 }, () => 100), ...Array.from({ length: 40 }, () => 3_000)];
      for (const [i, size] of sizes.entries()) await store.appendEvent('paged', padded(i + 1, size));
      const read: number[] = [];
      for await (const page of events.readPages('paged', {}))
        for (let i = 0; i < page.length; i++) read.push(page.at(i)?.bookmark.seq as number);
      await connection.close();
      await client.close();
      // Nothing skipped or repeated across pages that ended on bytes.
      expect(read).toEqual(sizes.map((_, i) => i + 1));
      // The first page knows no sizes yet; each later one follows the sizes of the page before.
      let previous: { events: number; largest: number } | undefined;
      for (const [i, reply] of replies.entries()) {
        expect(asked[i]).toBe(nextPageLimit(previous, 50, 20_000));
        previous = { events: 0, largest: 0 };
        let bytes = 0;
        for (const size of reply) {
          previous.events++;
          previous.largest = Math.max(previous.largest, size);
          bytes += size;
          if (bytes >= 20_000) break;
        }
      }
      expect(asked[0]).toBe(16);
      // Once only large events are read, a page is at most 20 000 bytes and the event that crossed it.
      const large = replies.filter((reply) => reply.length > 0 && reply.every((size) => size > 3_000));
      expect(large.length).toBeGreaterThan(0);
      for (const reply of large) {
        expect(reply.reduce((sum, size) => sum + size, 0)).toBeLessThan(20_000 + 3_200);
      }
    });
  });

  describe('values over the 16 MiB document limit', () => {
    /** A string whose JSON text alone is over the limit. */
    const huge = 'x'.repeat(MAX_DOCUMENT_BYTES + 1);
    const tooLarge = (path: string) => ({
      code: 'KODE_VALIDATION',
      path,
      message: expect.stringContaining(String(MAX_DOCUMENT_BYTES)),
    });

    it.each<[string, string, (store: MongoStore, id: string) => Promise<unknown>]>([
      [
        'messages[1]',
        'saveMessages',
        (s, id) => s.saveMessages(id, [message, { role: 'user', content: huge } as never]),
      ],
      [
        'records[0]',
        'saveToolCallRecords',
        (s, id) => s.saveToolCallRecords(id, [{ id: 't', name: huge } as never]),
      ],
      ['snapshot', 'saveTodos', (s, id) => s.saveTodos(id, { todos: [huge] } as never)],
      [
        'timeline',
        'appendEvent',
        (s, id) =>
          s.appendEvent(id, { ...timeline(1), event: { channel: 'monitor', type: 'x', huge } } as never),
      ],
      ['window', 'saveHistoryWindow', (s, id) => s.saveHistoryWindow(id, { huge } as never)],
      ['record', 'saveCompressionRecord', (s, id) => s.saveCompressionRecord(id, { huge } as never)],
      ['file', 'saveRecoveredFile', (s, id) => s.saveRecoveredFile(id, { huge } as never)],
      ['records[0]', 'saveMediaCache', (s, id) => s.saveMediaCache(id, [{ huge } as never])],
      ['snapshot', 'saveSnapshot', (s, id) => s.saveSnapshot(id, { id: 's', huge } as never)],
      ['info', 'saveInfo', (s, id) => s.saveInfo(id, { agentId: id, huge } as never)],
    ])('%s of %s is refused with ValidationError before anything is written', async (path, operation, save) => {
      const id = `huge-${operation}`;
      await expect(save(store, id)).rejects.toMatchObject({ ...tooLarge(path), operation });
      expect(await store.exists(id)).toBe(false);
      // The connection is still usable: nothing oversized reached the server.
      await store.saveMessages(id, [message]);
      expect(await store.loadMessages(id)).toEqual([message]);
    });

    it('a document that repeats part of the value (info.templateId) counts the repetition', async () => {
      const templateId = 'é'.repeat(Math.ceil(MAX_DOCUMENT_BYTES / 4));
      const info = { agentId: 'huge-template', templateId, createdAt: '2026-01-01T00:00:00Z' } as never;
      await expect(store.saveInfo('huge-template', info)).rejects.toMatchObject(tooLarge('info'));
      expect(await store.exists('huge-template')).toBe(false);
    });

    it('batchFork refuses a fork whose info would not fit, before writing any fork', async () => {
      const id = `fork-source-${'s'.repeat(900)}`;
      await store.saveMessages(id, [message]);
      const fill = (bytes: number) => ({ agentId: id, lineage: [], templateId: 't', pad: 'p'.repeat(bytes) });
      // The largest info that still fits: the fork's lineage (+ the source id) pushes it over.
      const base = toInfoDocument(id, JSON.stringify(fill(0)), sessionFields(fill(0) as never), 0);
      const room = MAX_STORED_DOCUMENT_BYTES - bsonSize(base);
      await store.saveInfo(id, fill(room) as never);
      const before = await store.list('fork-source-');
      await expect(store.batchFork(id, 2)).rejects.toMatchObject({
        ...tooLarge('info'),
        operation: 'batchFork',
      });
      expect(await store.list('fork-source-')).toEqual(before);
    });
  });

  describe('queries over seeded agents', () => {
    beforeAll(async () => {
      for (let a = 0; a < 5; a++) {
        const id = `q-${a}`;
        await store.saveInfo(id, {
          agentId: id,
          templateId: `t-${a % 2}`,
          createdAt: new Date(1_795_000_000_000 + a).toISOString(),
          lineage: [],
          configVersion: 'v',
          messageCount: a,
          lastSfpIndex: 0,
          metadata: { userId: `u-${a % 3}` },
        });
        await store.saveMessages(
          id,
          Array.from({ length: 20 }, () => message),
        );
        const records: ToolCallRecord[] = Array.from({ length: 10 }, (_, i) => ({
          id: `t${i}`,
          name: i % 2 ? 'bash' : 'fs_read',
          input: {},
          state: 'COMPLETED',
          approval: { required: i % 3 === 0 },
          createdAt: 1_000 + i,
          updatedAt: 2_000 + i,
          auditTrail: [],
        }));
        await store.saveToolCallRecords(id, records);
      }
    });

    describeMongoWith('explain', 'are answered from indexes, without an in-memory sort', () => {
      async function explain(collection: string, plan: FindPlan | null): Promise<string[]> {
        if (!plan) throw new Error('no plan');
        const output: Document = await withAdminClient((client) =>
          client
            .db(place.dbName)
            .collection(collection)
            .find(plan.filter)
            .sort(plan.sort)
            .skip(plan.skip)
            .limit(plan.limit)
            .explain('queryPlanner'),
        );
        return planStages(output.queryPlanner);
      }

      it.each([
        {},
        { agentId: 'q-1' },
        { agentId: 'q-1', sortOrder: 'asc' as const, createdAfter: 5 },
        { role: 'user' as const },
        { contentType: 'text' },
        { startDate: 0, endDate: Date.now() + 60_000, offset: 3, limit: 5 },
      ])('queryMessages %j', async (filters) => {
        const stages = await explain('kode_messages', messageQueryPlan(normalizeMessageFilters(filters)));
        expect(stages).toContain('IXSCAN');
        expect(stages).not.toContain('SORT');
        expect(stages).not.toContain('COLLSCAN');
      });

      it.each([
        {},
        { agentId: 'q-2', sortBy: 'updated_at' as const },
        { toolName: 'bash' },
        { state: 'COMPLETED' as const, sortOrder: 'asc' as const },
        { isError: false, hasApproval: true, sortBy: 'updated_at' as const },
      ])('queryToolCalls %j', async (filters) => {
        const stages = await explain('kode_tool_calls', toolCallQueryPlan(normalizeToolCallFilters(filters)));
        expect(stages).toContain('IXSCAN');
        expect(stages).not.toContain('SORT');
        expect(stages).not.toContain('COLLSCAN');
      });

      it.each([
        {},
        { templateId: 't-1' },
        { userId: 'u-2', sortOrder: 'asc' as const },
        { sortBy: 'updated_at' as const },
        { sortBy: 'message_count' as const, templateId: 't-0' },
      ])('querySessions %j', async (filters) => {
        const stages = await explain('kode_infos', sessionQueryPlan(normalizeSessionFilters(filters)));
        expect(stages).not.toContain('SORT');
        expect(stages).not.toContain('COLLSCAN');
      });
    });

    it('the answers match what was saved', async () => {
      expect(await store.queryMessages({ agentId: 'q-1' })).toHaveLength(20);
      expect(await store.queryToolCalls({ toolName: 'bash', agentId: 'q-0' })).toHaveLength(5);
      const sessions = await store.querySessions({ templateId: 't-1', sortOrder: 'asc' });
      expect(sessions.map((s) => s.agentId)).toEqual(['q-1', 'q-3']);
    });
  });
});
