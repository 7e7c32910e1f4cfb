import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { resolvePostgresSettings } from '../../../adapters/postgres/postgres-config.js';
import { createExtendedStore } from '../../../src/config/create-extended-store.js';
import { storeConfigFromEnv } from '../../../src/config/store-config.js';
import { isKodeStoreError, TimeoutError } from '../../../src/errors.js';
import type { AgentInfo, Message } from '../../../src/types.js';
import { describePostgres, useTestSchema } from '../../helpers/postgres.js';
import {
  describeWithPrivatePostgres,
  type PrivatePostgres,
  startPrivatePostgres,
} from '../../helpers/private-postgres.js';

/**
 * PostgreSQL timeouts: connect, statement and lock-wait bounds with defaults,
 * options and environment variables; a bound that runs out is a
 * `TimeoutError` naming the operation and the bound. No test measures
 * time: a call that would hang fails the test by the test timeout.
 */

const info = (agentId: string): AgentInfo => ({
  agentId,
  templateId: 'timeouts',
  createdAt: '2025-01-01T00:00:00.000Z',
  lineage: [],
  configVersion: 'v1',
  messageCount: 1,
  lastSfpIndex: -1,
});
const messages = (text: string): Message[] => [{ role: 'user', content: [{ type: 'text', text }] }];

describe('PostgreSQL timeout settings', () => {
  it('default to 10 s connect, 30 s statement and 30 s lock wait, set on the pool the store opens', () => {
    const settings = resolvePostgresSettings({ connection: 'postgres://h/db' });
    expect(settings.bounds).toEqual({
      connectTimeoutMs: 10_000,
      statementTimeoutMs: 30_000,
      lockTimeoutMs: 30_000,
    });
    expect(settings.poolConfig).toMatchObject({
      connectionTimeoutMillis: 10_000,
      statement_timeout: 30_000,
      lock_timeout: 30_000,
      // The client waits longer than the server (a tenth, at least 1 s), so a live server's cancel comes first.
      query_timeout: 33_000,
    });
  });

  it('take the options, and connectionTimeoutMillis as the connect bound', () => {
    const settings = resolvePostgresSettings({
      connection: { host: 'h', connectionTimeoutMillis: 1_500 },
      statementTimeoutMs: 2_000,
      lockTimeoutMs: 700,
    });
    expect(settings.bounds).toEqual({
      connectTimeoutMs: 1_500,
      statementTimeoutMs: 2_000,
      lockTimeoutMs: 700,
    });
    expect(settings.poolConfig).toMatchObject({
      connectionTimeoutMillis: 1_500,
      statement_timeout: 2_000,
      lock_timeout: 700,
      query_timeout: 3_000,
    });
    expect(
      resolvePostgresSettings({ connection: 'postgres://h/db', connectTimeoutMs: 900 }).poolConfig,
    ).toMatchObject({ connectionTimeoutMillis: 900 });
  });

  it.each([
    [{ connectTimeoutMs: 0 }, 'connectTimeoutMs'],
    [{ statementTimeoutMs: 1.5 }, 'statementTimeoutMs'],
    [{ lockTimeoutMs: '100' }, 'lockTimeoutMs'],
    [{ connectTimeoutMs: 100, connection: { host: 'h', connectionTimeoutMillis: 200 } }, 'connectTimeoutMs'],
  ])('refuse %j with a ConfigError naming %s', (options, variable) => {
    expect(() => resolvePostgresSettings({ connection: 'postgres://h/db', ...options } as never)).toThrow(
      expect.objectContaining({ code: 'KODE_CONFIG', variable }),
    );
  });

  it('are refused next to an injected pool, whose own settings are named in errors instead', () => {
    const pool = new pg.Pool({ connectionTimeoutMillis: 1_234, statement_timeout: 5_678, lock_timeout: 910 });
    try {
      expect(() => resolvePostgresSettings({ pool, statementTimeoutMs: 1_000 })).toThrow(
        expect.objectContaining({ code: 'KODE_CONFIG', variable: 'statementTimeoutMs' }),
      );
      expect(resolvePostgresSettings({ pool }).bounds).toEqual({
        connectTimeoutMs: 1_234,
        statementTimeoutMs: 5_678,
        lockTimeoutMs: 910,
        fromPool: true,
      });
    } finally {
      void pool.end();
    }
  });

  it('come from KODE_POSTGRES_*_TIMEOUT_MS', () => {
    const env = { KODE_STORE_TYPE: 'postgres', DATABASE_URL: 'postgres://h/db' };
    expect(
      storeConfigFromEnv({
        ...env,
        KODE_POSTGRES_CONNECT_TIMEOUT_MS: '1500',
        KODE_POSTGRES_STATEMENT_TIMEOUT_MS: '2500',
        KODE_POSTGRES_LOCK_TIMEOUT_MS: '3500',
      }),
    ).toMatchObject({ connectTimeoutMs: 1_500, statementTimeoutMs: 2_500, lockTimeoutMs: 3_500 });
    expect(storeConfigFromEnv(env)).toMatchObject({
      connectTimeoutMs: undefined,
      statementTimeoutMs: undefined,
      lockTimeoutMs: undefined,
    });
  });

  it.each([
    ['KODE_POSTGRES_CONNECT_TIMEOUT_MS', '0'],
    ['KODE_POSTGRES_STATEMENT_TIMEOUT_MS', '2s'],
    ['KODE_POSTGRES_LOCK_TIMEOUT_MS', '1e3'],
  ])('%s=%s is a ConfigError naming it', (variable, value) => {
    expect(() =>
      storeConfigFromEnv({ KODE_STORE_TYPE: 'postgres', DATABASE_URL: 'postgres://h/db', [variable]: value }),
    ).toThrow(expect.objectContaining({ code: 'KODE_CONFIG', variable }));
  });
});

describePostgres('PostgreSQL statement and lock-wait bounds on a live server', () => {
  const place = useTestSchema('timeouts');
  /**
   * The short bound of each test. The calls before and after the held row run
   * under it too, on the shared server that other test files keep busy: 200 ms
   * was tight for them on a loaded machine. The held row waits as long as it takes.
   */
  const SHORT_MS = 1_000;
  const stores: PostgresStore[] = [];
  const open = (bounds: { statementTimeoutMs: number; lockTimeoutMs: number }) => {
    const store = new PostgresStore({
      connection: { connectionString: place.url, max: 2, applicationName: 'kode-store-test-timeouts' },
      schema: place.schema,
      ...bounds,
    });
    stores.push(store);
    return store;
  };
  afterAll(async () => {
    await Promise.allSettled(stores.map((store) => store.close()));
  });

  /** Holds `FOR UPDATE` on the agent's row in an open transaction until the returned function is called. */
  async function holdAgentRow(agentId: string): Promise<() => Promise<void>> {
    const client = new pg.Client({
      connectionString: place.url,
      application_name: 'kode-store-test-timeouts',
    });
    await client.connect();
    await client.query('BEGIN');
    await client.query(
      `SELECT 1 FROM ${pg.escapeIdentifier(place.schema)}.kode_agents WHERE agent_id = $1 FOR UPDATE`,
      [agentId],
    );
    return async () => {
      await client.query('ROLLBACK');
      await client.end();
    };
  }

  it('createExtendedStore hands the bounds to the store', async () => {
    const store = (await createExtendedStore({
      type: 'postgres',
      connection: place.url,
      schema: place.schema,
      connectTimeoutMs: 1_500,
      statementTimeoutMs: 2_500,
      lockTimeoutMs: 3_500,
    })) as PostgresStore;
    stores.push(store);
    expect(store.db.bounds).toEqual({
      connectTimeoutMs: 1_500,
      statementTimeoutMs: 2_500,
      lockTimeoutMs: 3_500,
    });
  });

  it('a write waiting for a row lock past lockTimeoutMs fails with TimeoutError naming it, and the store goes on', async () => {
    const store = open({ statementTimeoutMs: 30_000, lockTimeoutMs: SHORT_MS });
    const id = `lock-wait-${process.pid}`;
    await store.saveInfo(id, info(id));
    const release = await holdAgentRow(id);
    let failure: unknown;
    try {
      failure = await store.saveInfo(id, { ...info(id), messageCount: 2 }).catch((error: unknown) => error);
    } finally {
      await release();
    }
    expect(failure).toBeInstanceOf(TimeoutError);
    expect(failure).toMatchObject({
      code: 'KODE_TIMEOUT',
      operation: 'saveInfo',
      agentId: id,
      timeoutMs: SHORT_MS,
    });
    expect((failure as Error).message).toMatch(/1000 ms \(lockTimeoutMs\)/);
    await store.saveInfo(id, { ...info(id), messageCount: 3 });
    expect((await store.loadInfo(id))?.messageCount).toBe(3);
  });

  it('a statement running past statementTimeoutMs is cancelled by the server: TimeoutError naming it', async () => {
    // The lock wait is the slow part of the statement; the statement bound is the shorter one.
    const store = open({ statementTimeoutMs: SHORT_MS, lockTimeoutMs: 30_000 });
    const id = `statement-${process.pid}`;
    await store.saveInfo(id, info(id));
    const release = await holdAgentRow(id);
    let failure: unknown;
    try {
      failure = await store.saveInfo(id, { ...info(id), messageCount: 2 }).catch((error: unknown) => error);
    } finally {
      await release();
    }
    expect(failure).toBeInstanceOf(TimeoutError);
    expect(failure).toMatchObject({ operation: 'saveInfo', timeoutMs: SHORT_MS });
    expect((failure as Error).message).toMatch(/1000 ms \(statementTimeoutMs\)/);
    expect(((failure as Error).cause as { code?: string }).code).toBe('57014');
    await store.saveInfo(id, { ...info(id), messageCount: 3 });
    expect((await store.loadInfo(id))?.messageCount).toBe(3);
  });

  it('a KV write waiting for a row lock fails with TimeoutError naming lockTimeoutMs', async () => {
    const store = open({ statementTimeoutMs: 30_000, lockTimeoutMs: SHORT_MS });
    await store.kv.set('timeouts', 'ns', 'key', 1, { autoCreateInstance: true });
    const client = new pg.Client({
      connectionString: place.url,
      application_name: 'kode-store-test-timeouts',
    });
    await client.connect();
    let failure: unknown;
    try {
      await client.query('BEGIN');
      await client.query(
        `SELECT 1 FROM ${pg.escapeIdentifier(place.schema)}.kode_kv_records WHERE instance_id = 'timeouts' FOR UPDATE`,
      );
      failure = await store.kv.set('timeouts', 'ns', 'key', 2).catch((error: unknown) => error);
    } finally {
      await client.query('ROLLBACK');
      await client.end();
    }
    expect(failure).toBeInstanceOf(TimeoutError);
    expect(failure).toMatchObject({ operation: 'kv.set', timeoutMs: SHORT_MS });
    await store.kv.set('timeouts', 'ns', 'key', 3);
    expect((await store.kv.get('timeouts', 'ns', 'key'))?.value).toBe(3);
  });
});

describeWithPrivatePostgres('PostgreSQL server stopped with SIGSTOP (a private server)', () => {
  let server: PrivatePostgres;
  const stores: PostgresStore[] = [];
  // Every call of these stores runs under these bounds, the ones made while the server
  // answers too: the schema migration, the first connections, the calls after SIGCONT. On
  // a loaded machine 400 ms was not enough for those; 2 s is, and is what a stopped server
  // costs each test (the calls made while it is stopped run side by side).
  const BOUND_MS = 2_000;
  const bounds = { connectTimeoutMs: BOUND_MS, statementTimeoutMs: BOUND_MS, lockTimeoutMs: BOUND_MS };
  const open = () => {
    const store = new PostgresStore({
      connection: { connectionString: server.url, max: 4, applicationName: 'kode-store-test-stopped' },
      schema: 'kode_stopped',
      ...bounds,
    });
    stores.push(store);
    return store;
  };
  beforeAll(async () => {
    server = await startPrivatePostgres();
  });
  afterAll(async () => {
    await server?.resume();
    await Promise.allSettled(stores.map((store) => store.close()));
    await server?.destroy();
  });

  it('every call fails with TimeoutError within the bound, and the same store works after SIGCONT', async () => {
    const store = open();
    const id = 'stopped-agent';
    // Connections open and the schema migrated while the server answers.
    await store.saveInfo(id, info(id));
    await store.saveMessages(id, messages('before'));
    await store.kv.set('stopped', 'ns', 'key', 'before', { autoCreateInstance: true });
    const fresh = open();

    await server.pause();
    let outcomes: PromiseSettledResult<unknown>[];
    try {
      outcomes = await Promise.allSettled([
        store.loadMessages(id),
        store.saveMessages(id, messages('while stopped')),
        store.appendEvent(id, {
          cursor: 1,
          bookmark: { seq: 1, timestamp: 1 },
          event: { channel: 'progress', type: 'text_chunk', delta: 'x' },
        } as never),
        store.kv.get('stopped', 'ns', 'key'),
        store.kv.set('stopped', 'ns', 'key', 'while stopped'),
        store.acquireAgentLock(id, 60_000),
        store.list(),
        // A store with no connection yet: its connect is what times out.
        fresh.loadMessages(id),
      ]);
    } finally {
      await server.resume();
    }
    const failures = outcomes.map((outcome) =>
      outcome.status === 'rejected' ? outcome.reason : new Error('resolved while the server was stopped'),
    );
    for (const failure of failures) {
      expect(isKodeStoreError(failure) ? failure.code : (failure as Error).message).toBe('KODE_TIMEOUT');
      expect((failure as TimeoutError).timeoutMs).toBe(BOUND_MS);
    }
    const fromFresh = failures[failures.length - 1] as TimeoutError;
    expect(fromFresh.message).toMatch(/\(connectTimeoutMs\)/);
    expect(fromFresh.operation).toBe('loadMessages');

    // Recovered: the same stores, no reopening.
    await store.saveMessages(id, messages('after'));
    expect(await store.loadMessages(id)).toEqual(messages('after'));
    await store.kv.set('stopped', 'ns', 'key', 'after');
    expect((await store.kv.get('stopped', 'ns', 'key'))?.value).toBe('after');
    expect(await fresh.loadMessages(id)).toEqual(messages('after'));
  }, 60_000);

  it('a readEvents page asked for while the server is stopped fails with TimeoutError, and the stream reads again after SIGCONT', async () => {
    const store = open();
    const id = 'stopped-reader';
    const event = (seq: number) =>
      ({
        cursor: seq,
        bookmark: { seq, timestamp: 1 },
        event: { channel: 'progress', type: 'text_chunk', delta: `e${seq}` },
      }) as never;
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.appendEvent(id, event(i + 1))));
    // The first page holds 16 events (src/agent/paged-iterable.ts): the
    // 17th is the first of a page fetched after the server stopped.
    const reader = store.readEvents(id)[Symbol.asyncIterator]();
    for (let seq = 1; seq <= 16; seq++) expect((await reader.next()).value).toEqual(event(seq));

    await server.pause();
    let failure: unknown;
    try {
      failure = await reader.next().catch((error: unknown) => error);
    } finally {
      await server.resume();
    }
    expect(failure).toBeInstanceOf(TimeoutError);
    expect(failure).toMatchObject({ operation: 'readEvents', timeoutMs: BOUND_MS });

    const all: unknown[] = [];
    for await (const read of store.readEvents(id)) all.push(read);
    expect(all).toEqual(Array.from({ length: 40 }, (_, i) => event(i + 1)));
  }, 60_000);
});
