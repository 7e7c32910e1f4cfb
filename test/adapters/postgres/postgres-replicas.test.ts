import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { resolvePostgresSettings } from '../../../adapters/postgres/postgres-config.js';
import { PostgresKvBackend } from '../../../adapters/postgres/postgres-kv.js';
import {
  DEFAULT_MAX_REPLICA_LAG_MS,
  type PostgresReplicaStatus,
} from '../../../adapters/postgres/postgres-replicas.js';
import { storeConfigFromEnv } from '../../../src/config/store-config.js';
import { createKvStore } from '../../../src/kv/kv-store.js';
import type { AgentInfo, Message, ToolCallRecord } from '../../../src/types.js';
import {
  describeWithPrivatePostgres,
  type PrivatePostgres,
  startPrivatePostgres,
} from '../../helpers/private-postgres.js';

/**
 * Read replicas against a real hot standby: a private primary, and a standby
 * made from it with pg_basebackup -R on another port. Where a read went is
 * proven by data, not by timing: with the standby's replay paused, a row
 * written on the primary is missing from the standby only, so an answer
 * without it came from the standby and an answer with it from the primary.
 * Waits poll what the store reports; no test measures time.
 */

const info = (agentId: string): AgentInfo => ({
  agentId,
  templateId: 'replicas',
  createdAt: '2025-01-01T00:00:00.000Z',
  lineage: [],
  configVersion: 'v1',
  messageCount: 1,
  lastSfpIndex: -1,
});
const messages: Message[] = [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }];
const toolCall = (id: string): ToolCallRecord =>
  ({
    id,
    name: 'read_file',
    input: {},
    state: 'COMPLETED',
    approval: { required: false },
    createdAt: 1,
    updatedAt: 1,
    auditTrail: [],
  }) as unknown as ToolCallRecord;

describe('PostgreSQL replica settings', () => {
  it('take replica URLs or connection objects, with the primary bounds and a default lag bound', () => {
    const settings = resolvePostgresSettings({
      connection: 'postgres://primary/db',
      replicas: ['postgres://r1/db', { host: 'r2', database: 'db', applicationName: 'reports' }],
      statementTimeoutMs: 2_000,
    });
    expect(settings.maxReplicaLagMs).toBe(DEFAULT_MAX_REPLICA_LAG_MS);
    expect(settings.replicaPoolConfigs).toEqual([
      expect.objectContaining({ connectionString: 'postgres://r1/db', statement_timeout: 2_000 }),
      expect.objectContaining({ host: 'r2', application_name: 'reports', statement_timeout: 2_000 }),
    ]);
    expect(resolvePostgresSettings({ connection: 'postgres://p/db' }).replicaPoolConfigs).toEqual([]);
  });

  it.each([
    [{ replicas: 'postgres://r/db' }, 'replicas'],
    [{ replicas: ['mysql://r/db'] }, 'replicas'],
    [{ replicas: [{ host: 'r', max: 0 }] }, 'replicas'],
    [{ replicas: ['postgres://r/db'], maxReplicaLagMs: 0 }, 'maxReplicaLagMs'],
    [{ replicas: ['postgres://r/db'], maxReplicaLagMs: 1.5 }, 'maxReplicaLagMs'],
  ])('refuse %j with a ConfigError naming %s', (options, variable) => {
    expect(() => resolvePostgresSettings({ connection: 'postgres://p/db', ...options } as never)).toThrow(
      expect.objectContaining({ code: 'KODE_CONFIG', variable }),
    );
  });

  it('of a KV backend of its own must be pools and a whole number of milliseconds (ConfigError)', async () => {
    const pool = new pg.Pool({ connectionString: 'postgres://unused/db' });
    expect(() => new PostgresKvBackend(pool, { replicas: ['postgres://r/db'] as never })).toThrow(
      expect.objectContaining({ code: 'KODE_CONFIG', variable: 'replicas' }),
    );
    expect(() => new PostgresKvBackend(pool, { replicas: [pool], maxReplicaLagMs: -1 })).toThrow(
      expect.objectContaining({ code: 'KODE_CONFIG', variable: 'maxReplicaLagMs' }),
    );
    expect(await new PostgresKvBackend(pool).replicaStatus()).toBeUndefined();
  });

  it('come from KODE_POSTGRES_REPLICA_URLS (comma-separated) and KODE_POSTGRES_MAX_REPLICA_LAG_MS', () => {
    const env = {
      KODE_STORE_TYPE: 'postgres',
      DATABASE_URL: 'postgres://primary/db',
      KODE_POSTGRES_REPLICA_URLS: ' postgres://r1/db , postgres://r2/db ',
      KODE_POSTGRES_MAX_REPLICA_LAG_MS: '2500',
    };
    expect(storeConfigFromEnv(env)).toMatchObject({
      replicas: ['postgres://r1/db', 'postgres://r2/db'],
      maxReplicaLagMs: 2500,
    });
    expect(storeConfigFromEnv({ ...env, KODE_POSTGRES_REPLICA_URLS: '' })).toMatchObject({
      replicas: undefined,
    });
    expect(() => storeConfigFromEnv({ ...env, KODE_POSTGRES_MAX_REPLICA_LAG_MS: 'soon' })).toThrow(
      expect.objectContaining({ code: 'KODE_CONFIG', variable: 'KODE_POSTGRES_MAX_REPLICA_LAG_MS' }),
    );
  });
});

describeWithPrivatePostgres(
  'PostgreSQL read replicas (a private primary and a hot standby made from it)',
  () => {
    let primary: PrivatePostgres;
    let standby: PrivatePostgres;
    const stores: PostgresStore[] = [];
    const pools: pg.Pool[] = [];

    beforeAll(async () => {
      primary = await startPrivatePostgres({ replication: true });
      standby = await primary.startStandby();
    }, 120_000);
    afterAll(async () => {
      await standby?.resume();
      await Promise.allSettled(stores.map((store) => store.close()));
      await Promise.allSettled(pools.map((pool) => pool.end()));
      await standby?.destroy();
      await primary?.destroy();
    });

    const open = (schema: string, maxReplicaLagMs: number) => {
      const store = new PostgresStore({
        connection: { connectionString: primary.url, max: 4 },
        replicas: [{ connectionString: standby.url, max: 4 }],
        maxReplicaLagMs,
        schema,
        // A standby that stops answering gives up its reads within these bounds.
        connectTimeoutMs: 1_000,
        statementTimeoutMs: 1_000,
      });
      stores.push(store);
      return store;
    };

    const sql = async <R>(url: string, text: string): Promise<R[]> => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(text)).rows as R[];
      } finally {
        await client.end();
      }
    };

    /** Polls `done` until it holds; fails naming `what` after 30 s (a test's own timeout would not say which wait it was). */
    const until = async (what: string, done: () => Promise<boolean>) => {
      const deadline = performance.now() + 30_000;
      while (!(await done())) {
        if (performance.now() > deadline) throw new Error(`waited 30 s, still not: ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return what;
    };

    const replicaOf = async (store: PostgresStore): Promise<PostgresReplicaStatus> => {
      const health = await store.healthCheck();
      return health.replicas?.[0] as PostgresReplicaStatus;
    };
    const usable = (store: PostgresStore) => until('usable', async () => (await replicaOf(store)).usable);
    const bypassed = (store: PostgresStore) =>
      until('bypassed', async () => !(await replicaOf(store)).usable);

    /** Pauses replay on the standby: what the primary writes from then on is missing there. */
    const pauseReplay = async () => {
      await sql(standby.url, 'SELECT pg_wal_replay_pause()');
      await until('paused', async () => {
        const [row] = await sql<{ state: string }>(
          standby.url,
          'SELECT pg_get_wal_replay_pause_state() AS state',
        );
        return row?.state === 'paused';
      });
    };
    const resumeReplay = () => sql(standby.url, 'SELECT pg_wal_replay_resume()');

    const sessionIds = async (store: PostgresStore) =>
      (await store.querySessions({ templateId: 'replicas' })).map((session) => session.agentId).sort();

    it('reads the query APIs from a healthy standby and keeps read-your-writes calls on the primary', async () => {
      const store = open('kode_replica_reads', 60_000);
      await store.saveInfo('old', info('old'));
      await store.saveMessages('old', messages);
      const kvId = (await store.kv.createInstance({ name: 'replicas', id: 'kv-reads' })).id;
      await store.kv.set(kvId, 'ns', 'old', 1);
      // Usable first, so that the wait below reads the standby and not the primary; and the KV record
      // is the last of these writes, so once the standby has it, it has the rest.
      await usable(store);
      await until('standby has the old rows', async () =>
        (await store.kv.query({ from: { instance: kvId } })).records.some((r) => r.key === 'old'),
      );

      await pauseReplay();
      try {
        await store.saveInfo('new', info('new'));
        await store.saveMessages('new', messages);
        await store.saveToolCallRecords('new', [toolCall('call-1')]);
        await store.appendEvent('new', {
          cursor: 1,
          bookmark: { seq: 1, timestamp: 1 },
          event: { channel: 'progress', type: 'text_chunk', delta: 'x' },
        } as never);
        await store.kv.set(kvId, 'ns', 'new', 2);

        // The query APIs answer from the standby: without what replay has not reached.
        expect((await replicaOf(store)).usable).toBe(true);
        expect(await sessionIds(store)).toEqual(['old']);
        expect(await store.queryMessages({ agentId: 'new' })).toEqual([]);
        expect(await store.queryToolCalls({ agentId: 'new' })).toEqual([]);
        expect((await store.aggregateStats('new')).totalMessages).toBe(0);
        expect((await store.kv.query({ from: { instance: kvId } })).records.map((r) => r.key)).toEqual([
          'old',
        ]);
        expect(await store.kv.getRecordCount(kvId)).toBe(1);
        // A page and its total: two statements in one read-only snapshot, on the standby too.
        expect((await store.kv.query({ from: { instance: kvId }, limit: 10 })).total).toBe(1);

        // Read-your-writes calls answer from the primary.
        expect(await store.loadInfo('new')).toEqual(info('new'));
        expect(await store.loadMessages('new')).toEqual(messages);
        expect(await store.loadToolCallRecords('new')).toHaveLength(1);
        expect(await store.exists('new')).toBe(true);
        expect(await store.list()).toEqual(['new', 'old']);
        const events: unknown[] = [];
        for await (const entry of store.readEvents('new')) events.push(entry);
        expect(events).toHaveLength(1);
        expect((await store.kv.get(kvId, 'ns', 'new')).value).toBe(2);
      } finally {
        await resumeReplay();
      }
      // Replay applies the writes in commit order, and the KV record was written last: wait for it,
      // not for the session written first (replay can stand between the two when this runs).
      await until('standby caught up', async () =>
        (await store.kv.query({ from: { instance: kvId } })).records.some((r) => r.key === 'new'),
      );
      expect((await store.kv.query({ from: { instance: kvId } })).records.map((r) => r.key)).toEqual([
        'new',
        'old',
      ]);
      expect(await sessionIds(store)).toEqual(['new', 'old']);
    }, 60_000);

    it('bypasses a standby whose replay lags behind by more than maxReplicaLagMs, and returns to it once it catches up', async () => {
      const store = open('kode_replica_lag', 300);
      await store.saveInfo('before-lag', info('before-lag'));
      await until('standby has the row', async () => (await sessionIds(store)).includes('before-lag'));
      await usable(store);
      await pauseReplay();
      try {
        await store.saveInfo('during-lag', info('during-lag'));
        await bypassed(store);
        expect((await replicaOf(store)).error).toMatch(/behind the primary by more than 300 ms/);
        // The primary answers: the row the standby has not replayed is there.
        expect(await sessionIds(store)).toEqual(['before-lag', 'during-lag']);
      } finally {
        await resumeReplay();
      }
      await usable(store);
    }, 60_000);

    it('falls back to the primary when the standby is stopped (SIGSTOP) and uses it again after SIGCONT', async () => {
      const store = open('kode_replica_paused', 300);
      await store.saveInfo('before-pause', info('before-pause'));
      await until('standby has the row', async () => (await sessionIds(store)).includes('before-pause'));
      await usable(store);
      await standby.pause();
      try {
        await store.saveInfo('during-pause', info('during-pause'));
        await bypassed(store);
        expect(await sessionIds(store)).toEqual(['before-pause', 'during-pause']);
        const kvId = (await store.kv.createInstance({ name: 'paused' })).id;
        await store.kv.set(kvId, 'ns', 'k', 1);
        expect(await store.kv.getRecordCount(kvId)).toBe(1);
      } finally {
        await standby.resume();
      }
      await usable(store);
    }, 60_000);

    it('serves a KV backend of its own from its replica pools', async () => {
      const primaryPool = new pg.Pool({ connectionString: primary.url, max: 2 });
      const replicaPool = new pg.Pool({ connectionString: standby.url, max: 2 });
      pools.push(primaryPool, replicaPool);
      const backend = new PostgresKvBackend(primaryPool, {
        schema: 'kode_replica_kv',
        replicas: [replicaPool],
        maxReplicaLagMs: 60_000,
      });
      const kv = createKvStore(backend);
      const { id } = await kv.createInstance({ name: 'own' });
      await kv.set(id, 'ns', 'old', 1);
      await until('usable', async () => (await backend.replicaStatus())?.[0]?.usable === true);
      await until('standby has the row', async () => (await kv.getRecordCount(id)) === 1);
      await pauseReplay();
      try {
        await kv.set(id, 'ns', 'new', 2);
        expect(await kv.getRecordCount(id)).toBe(1);
        expect((await kv.get(id, 'ns', 'new')).value).toBe(2);
      } finally {
        await resumeReplay();
      }
    }, 60_000);

    it('falls back at once when the standby is shut down, and reports it in health and metrics', async () => {
      const store = open('kode_replica_stopped', 60_000);
      await store.saveInfo('before-stop', info('before-stop'));
      await until('standby has the row', async () => (await sessionIds(store)).includes('before-stop'));
      await usable(store);
      await standby.stop();
      await store.saveInfo('after-stop', info('after-stop'));
      // The first read meets the stopped standby, and runs again on the primary.
      expect(await sessionIds(store)).toEqual(['after-stop', 'before-stop']);
      const replica = await replicaOf(store);
      expect(replica).toMatchObject({ usable: false, name: `127.0.0.1:${standby.port}/postgres` });
      expect(replica.error).toBeDefined();
      expect((await store.healthCheck()).healthy).toBe(true);
      expect((await store.getMetrics()).replicas?.[0]).toMatchObject({ usable: false });
    }, 60_000);
  },
);
