import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { resolvePostgresSettings } from '../../../adapters/postgres/postgres-config.js';
import { AGENT_SCHEMA_VERSION, migrateAgentSchema } from '../../../adapters/postgres/postgres-schema.js';
import { collect } from '../../../conformance/runner/assertions.js';
import { storeConfigFromEnv } from '../../../src/config/store-config.js';
import { ConfigError } from '../../../src/errors.js';
import { moveEvents } from '../../../src/transfer/event-mode-move.js';
import type { Timeline } from '../../../src/types.js';
import { adminQuery, describePostgres, useTestSchema } from '../../helpers/postgres.js';

/**
 * `eventPartitions`: `kode_events` partitioned by hash of the agent id. The
 * catalogue holds the layout the option asks for; one agent's rows are in
 * one partition; a store never opens a schema laid out otherwise than its
 * option says (and changes nothing there); the size reports count the
 * partitions; the events move of `kode-store events` works on it. The
 * conformance suites run on it in postgres-partitions-conformance.test.ts.
 */

function event(agentId: string, seq: number): Timeline {
  return {
    cursor: seq,
    bookmark: { seq, timestamp: 1_795_000_000_000 + seq },
    event: { channel: 'progress', type: 'text_chunk', step: 1, delta: `${agentId} ${seq}` },
  } as unknown as Timeline;
}

/** What the catalogue says of `kode_events` in `schema`: strategy, key, and each partition with its bound. */
async function catalogue(schema: string) {
  const [table] = await adminQuery<{ relkind: string; strategy: string | null; key: string[] }>(
    `SELECT c.relkind, p.partstrat AS strategy,
        array(SELECT a.attname::text FROM unnest(p.partattrs::int2[]) AS k(attnum)
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) AS key
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
     WHERE n.nspname = $1 AND c.relname = 'kode_events'`,
    [schema],
  );
  const partitions = await adminQuery<{ name: string; bound: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_namespace n ON n.oid = parent.relnamespace
     WHERE n.nspname = $1 AND parent.relname = 'kode_events' ORDER BY c.relname`,
    [schema],
  );
  return { table, partitions };
}

/** Which partition holds each of the agent's event rows. */
async function partitionsOf(schema: string, agentId: string): Promise<string[]> {
  const rows = await adminQuery<{ partition: string }>(
    `SELECT DISTINCT tableoid::regclass::text AS partition FROM ${pg.escapeIdentifier(schema)}.kode_events
      WHERE agent_id = $1`,
    [agentId],
  );
  return rows.map((row) => row.partition);
}

async function version(schema: string): Promise<number | undefined> {
  const rows = await adminQuery<{ version: number }>(
    `SELECT version FROM ${pg.escapeIdentifier(schema)}.kode_schema_version WHERE component = 'agent'`,
  );
  return rows[0]?.version;
}

describe('eventPartitions: the option and its variable', () => {
  it('accepts 0 to 1024 and refuses anything else with a ConfigError naming the option', () => {
    for (const eventPartitions of [0, 1, 16, 1024]) {
      expect(
        resolvePostgresSettings({ connection: 'postgres://h/db', eventPartitions }).eventPartitions,
      ).toBe(eventPartitions);
    }
    expect(resolvePostgresSettings({ connection: 'postgres://h/db' }).eventPartitions).toBeUndefined();
    for (const eventPartitions of [-1, 1.5, 1025, Number.NaN, '4', null]) {
      expect(() =>
        resolvePostgresSettings({
          connection: 'postgres://h/db',
          eventPartitions: eventPartitions as number,
        }),
      ).toThrow(expect.objectContaining({ code: 'KODE_CONFIG', variable: 'eventPartitions' }));
    }
  });

  it('is read from KODE_POSTGRES_EVENT_PARTITIONS, whose bad values name the variable', () => {
    const env = { KODE_STORE_TYPE: 'postgres', DATABASE_URL: 'postgres://h/db' };
    expect(storeConfigFromEnv({ ...env, KODE_POSTGRES_EVENT_PARTITIONS: '16' })).toMatchObject({
      eventPartitions: 16,
    });
    expect(storeConfigFromEnv({ ...env, KODE_POSTGRES_EVENT_PARTITIONS: ' ' })).toMatchObject({
      eventPartitions: undefined,
    });
    for (const value of ['-1', 'x', '1e3', '0x10']) {
      expect(() => storeConfigFromEnv({ ...env, KODE_POSTGRES_EVENT_PARTITIONS: value })).toThrow(
        expect.objectContaining({ code: 'KODE_CONFIG', variable: 'KODE_POSTGRES_EVENT_PARTITIONS' }),
      );
    }
  });
});

describePostgres('PostgresStore eventPartitions: events partitioned by hash of agent id', () => {
  const place = useTestSchema('partitions');
  const stores: PostgresStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close().catch(() => undefined);
  });
  const open = (schema: string, options: { eventPartitions?: number; readOnly?: boolean } = {}) => {
    const store = new PostgresStore({ connection: place.url, schema, ...options });
    stores.push(store);
    return store;
  };

  it('creates kode_events partitioned by hash of agent_id into N partitions, one agent in one partition', async () => {
    const schema = place.schema;
    const store = open(schema, { eventPartitions: 4 });
    const agents = Array.from({ length: 12 }, (_, i) => `agent-${i}`);
    await Promise.all(agents.flatMap((id) => [1, 2, 3].map((seq) => store.appendEvent(id, event(id, seq)))));

    const { table, partitions } = await catalogue(schema);
    expect(table).toEqual({ relkind: 'p', strategy: 'h', key: ['agent_id'] });
    expect(partitions).toEqual(
      [0, 1, 2, 3].map((i) => ({
        name: `kode_events_p${i}`,
        bound: `FOR VALUES WITH (modulus 4, remainder ${i})`,
      })),
    );
    const used = new Set<string>();
    for (const id of agents) {
      const holding = await partitionsOf(schema, id);
      expect(holding, `the partitions holding ${id}'s events`).toHaveLength(1);
      used.add(holding[0] as string);
      expect((await collect(store.readEvents(id))).map((e) => e.bookmark.seq)).toEqual([1, 2, 3]);
    }
    expect(used.size, '12 agents spread over more than one partition').toBeGreaterThan(1);

    // Every index of every partition leads with agent_id.
    const indexes = await adminQuery<{ table: string; index: string; first: string; unique: boolean }>(
      `SELECT c.relname AS table, i.relname AS index, a.attname AS first, x.indisunique AS unique
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
       WHERE n.nspname = $1 AND c.relname LIKE 'kode\\_events%'`,
      [schema],
    );
    // The parent's three (primary key, by channel, by seq) and each partition's copies of them.
    expect(indexes).toHaveLength(3 * 5);
    for (const index of indexes) expect(index.first, `${index.index} of ${index.table}`).toBe('agent_id');
  });

  it('leaves events in one plain table with eventPartitions 0, and without the option', async () => {
    for (const eventPartitions of [0, undefined]) {
      const schema = place.also(`${place.schema}_plain_${eventPartitions ?? 'unset'}`);
      const store = open(schema, { eventPartitions });
      await store.appendEvent('a', event('a', 1));
      const { table, partitions } = await catalogue(schema);
      expect(table).toEqual({ relkind: 'r', strategy: null, key: [] });
      expect(partitions).toEqual([]);
    }
  });

  it('refuses a schema laid out otherwise than eventPartitions asks, naming both, and changes nothing', async () => {
    const plain = place.also(`${place.schema}_was_plain`);
    const hashed = place.also(`${place.schema}_was_hashed`);
    await open(plain).appendEvent('a', event('a', 1));
    await open(hashed, { eventPartitions: 4 }).appendEvent('a', event('a', 1));

    const cases = [
      {
        schema: plain,
        eventPartitions: 4,
        has: 'one plain table',
        wants: '4 partitions by hash of agent_id',
      },
      { schema: hashed, eventPartitions: 0, has: '4 partitions by hash', wants: 'one plain table' },
      { schema: hashed, eventPartitions: 8, has: 'eventPartitions: 4', wants: 'eventPartitions: 8' },
    ];
    for (const { schema, eventPartitions, has, wants } of cases) {
      for (const readOnly of [false, true]) {
        const store = open(schema, { eventPartitions, readOnly });
        const refused = await store
          .readEvents('a')
          [Symbol.asyncIterator]()
          .next()
          .catch((e: unknown) => e);
        expect(refused, `${schema} opened with eventPartitions ${eventPartitions}`).toBeInstanceOf(
          ConfigError,
        );
        expect(refused).toMatchObject({ variable: 'eventPartitions', backend: 'postgres' });
        expect((refused as Error).message).toContain(has);
        expect((refused as Error).message).toContain(wants);
        if (!readOnly)
          await expect(store.appendEvent('a', event('a', 2))).rejects.toBeInstanceOf(ConfigError);
      }
    }
    // Nothing was added to either, and both open as they are without the option.
    expect((await catalogue(plain)).partitions).toEqual([]);
    expect((await catalogue(hashed)).partitions).toHaveLength(4);
    for (const schema of [plain, hashed]) {
      expect((await collect(open(schema).readEvents('a'))).map((e) => e.bookmark.seq)).toEqual([1]);
    }
    // The matching option opens each.
    expect(await collect(open(plain, { eventPartitions: 0 }).readEvents('a'))).toHaveLength(1);
    expect(await collect(open(hashed, { eventPartitions: 4, readOnly: true }).readEvents('a'))).toHaveLength(
      1,
    );
  });

  it('checks the layout before upgrading an older schema, and upgrades a partitioned one', async () => {
    const older = place.also(`${place.schema}_older`);
    const client = new pg.Client({ connectionString: place.url });
    await client.connect();
    try {
      const tx = {
        query: async <R>(text: string, values?: unknown[]) => (await client.query(text, values)).rows as R[],
      };
      await migrateAgentSchema(tx, older, 1, 2);
    } finally {
      await client.end();
    }
    expect((await catalogue(older)).partitions).toHaveLength(2);

    await expect(open(older, { eventPartitions: 0 }).exists('a')).rejects.toMatchObject({
      code: 'KODE_CONFIG',
      variable: 'eventPartitions',
    });
    expect(await version(older), 'the refused open migrated nothing').toBe(1);

    // Version 4 adds appended_at_ms to the partitioned table: every partition has it, with its default.
    const store = open(older, { eventPartitions: 2 });
    await store.appendEvent('a', event('a', 1));
    expect(await version(older)).toBe(AGENT_SCHEMA_VERSION);
    const times = await adminQuery<{ t: number | null }>(
      `SELECT appended_at_ms AS t FROM ${pg.escapeIdentifier(older)}.kode_events WHERE agent_id = 'a'`,
    );
    expect(times).toHaveLength(1);
    expect(times[0]?.t).toBeGreaterThan(0);
  });

  it('counts the partitions in the size reports', async () => {
    const schema = place.also(`${place.schema}_sizes`);
    const store = open(schema, { eventPartitions: 4 });
    // Random text, which TOAST cannot compress: the rows take their size.
    await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        store.appendEvent(`sized-${i % 8}`, {
          ...event('sized', i),
          extra: randomBytes(1_000).toString('hex'),
        } as Timeline),
      ),
    );
    const [row] = await adminQuery<{ size: string }>(
      `SELECT sum(pg_total_relation_size(c.oid)) AS size FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
         JOIN pg_namespace n ON n.oid = p.relnamespace WHERE n.nspname = $1 AND p.relname = 'kode_events'`,
      [schema],
    );
    const partitions = Number(row?.size);
    expect(partitions).toBeGreaterThan(400 * 2_000);
    const metrics = await store.getMetrics();
    expect(metrics.storage.totalEvents).toBe(400);
    expect(metrics.storage.dbSizeBytes).toBeGreaterThan(partitions);
    const compacted = await store.compact();
    expect(compacted.bytesBefore).toBeGreaterThan(partitions);
  });

  it('deletes, prunes and moves the events of the partitioned layout (kode-store events)', async () => {
    const schema = place.also(`${place.schema}_move`);
    const store = open(schema, { eventPartitions: 3 });
    const agents = ['m-1', 'm-2', 'm-3', 'm-4'];
    for (const id of agents) {
      await Promise.all([1, 2, 3, 4, 5].map((seq) => store.appendEvent(id, event(id, seq))));
    }
    await store.delete('m-4');
    expect(await collect(store.readEvents('m-4'))).toEqual([]);
    const pruned = await store.prune({ events: { keepNewest: 2 } });
    expect(pruned.events).toBe(9);
    expect((await collect(store.readEvents('m-1'))).map((e) => e.bookmark.seq)).toEqual([4, 5]);

    const dir = await mkdtemp(join(tmpdir(), 'kode-partitions-move-'));
    try {
      const toFiles = await moveEvents(store.eventRows(), {
        to: 'file',
        fileStoreBaseDir: dir,
        fsync: false,
      });
      expect(toFiles.map((m) => [m.agentId, m.events])).toEqual([
        ['m-1', 2],
        ['m-2', 2],
        ['m-3', 2],
      ]);
      const [left] = await adminQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.kode_events`,
      );
      expect(left?.n).toBe(0);
      const back = await moveEvents(store.eventRows(), {
        to: 'database',
        fileStoreBaseDir: dir,
        fsync: false,
      });
      expect(back.map((m) => m.events)).toEqual([2, 2, 2]);
      for (const id of ['m-1', 'm-2', 'm-3']) {
        expect((await collect(store.readEvents(id))).map((e) => e.bookmark.seq)).toEqual([4, 5]);
        expect(await partitionsOf(schema, id)).toHaveLength(1);
      }
      expect((await store.checkConsistency('m-1')).issues).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
