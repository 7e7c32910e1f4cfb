import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, expect, it, vi } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { createExtendedStore, type KodeStore } from '../../../src/config/create-extended-store.js';
import type { AgentInfo, Message } from '../../../src/types.js';
import { describePgBouncer, type RunningPgBouncer, startPgBouncer } from '../../helpers/pgbouncer.js';
import { requirePostgresUrl, useTestSchema } from '../../helpers/postgres.js';

/**
 * PostgresStore behind PgBouncer (the conformance suites through it are in
 * postgres-pgbouncer-*.test.ts): locks across processes through the pooler,
 * what `preparedStatements` (KODE_POSTGRES_PREPARED_STATEMENTS) changes in
 * transaction mode, the startup parameters PgBouncer must be told to
 * ignore, and why statement mode cannot work.
 */

const run = promisify(execFile);
const COUNTER_SCRIPT = fileURLToPath(new URL('../../child/postgres-lock-counter.ts', import.meta.url));

let counter = 0;
const agentId = (label: string) => `${label}-${process.pid}-${++counter}`;

const info = (id: string, messageCount = 0): AgentInfo => ({
  agentId: id,
  templateId: 'bouncer-test',
  createdAt: '2025-01-01T00:00:00.000Z',
  lineage: [],
  configVersion: 'v1',
  messageCount,
  lastSfpIndex: -1,
});

const conversation = (turns: number): Message[] =>
  Array.from({ length: turns }, (_, i) => ({
    role: i % 2 === 0 ? ('user' as const) : ('assistant' as const),
    content: [{ type: 'text' as const, text: `turn ${i}` }],
  }));

/** What the store opened by createExtendedStore() was told (a PostgresStore says it). */
const preparedStatementsOf = (store: KodeStore) => (store as unknown as PostgresStore).preparedStatements;

describePgBouncer('PostgresStore behind PgBouncer', () => {
  const place = useTestSchema('bouncer');
  const bouncers: RunningPgBouncer[] = [];
  const stores: Array<PostgresStore | KodeStore> = [];

  const bouncer = async (options: Omit<Parameters<typeof startPgBouncer>[0], 'serverUrl'>) => {
    const started = await startPgBouncer({ ...options, serverUrl: requirePostgresUrl() });
    bouncers.push(started);
    return started;
  };

  /** createExtendedStore() from the environment, as an application configures it. */
  const storeFromEnv = async (url: string, env: Record<string, string>) => {
    vi.stubEnv('KODE_STORE_TYPE', 'postgres');
    vi.stubEnv('DATABASE_URL', url);
    vi.stubEnv('KODE_POSTGRES_SCHEMA', place.schema);
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    try {
      const store = await createExtendedStore();
      stores.push(store);
      return store;
    } finally {
      vi.unstubAllEnvs();
    }
  };

  afterEach(() => {
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    await Promise.allSettled(stores.map((store) => store.close()));
    await Promise.allSettled(bouncers.map((b) => b.stop()));
  });

  it('keeps agent locks exclusive across 2 processes through the pooler: 2 × 50 locked increments make 100', async () => {
    const pooler = await bouncer({ poolMode: 'transaction', poolSize: 2 });
    const store = new PostgresStore({
      connection: { connectionString: pooler.url, max: 2 },
      schema: place.schema,
      preparedStatements: false,
    });
    stores.push(store);
    const id = agentId('counter');
    await store.saveInfo(id, info(id, 0));
    await Promise.all(
      [0, 1].map(() =>
        run(
          process.execPath,
          ['--import', 'tsx', COUNTER_SCRIPT, pooler.url, place.schema, id, '50', 'false'],
          // Generous: the machine may be busy, and this bounds a hang, not the speed.
          { timeout: 110_000 },
        ),
      ),
    );
    expect((await store.loadInfo(id))?.messageCount).toBe(100);
  }, 120_000);

  it('KODE_POSTGRES_PREPARED_STATEMENTS=false lets stores share one server connection in transaction mode; named statements collide there', async () => {
    // One server connection for every client: what one store prepares is
    // there when the next store's transaction gets the connection.
    const pooler = await bouncer({ poolMode: 'transaction', poolSize: 1 });

    const first = await storeFromEnv(pooler.url, { KODE_POSTGRES_PREPARED_STATEMENTS: 'false' });
    const second = await storeFromEnv(pooler.url, { KODE_POSTGRES_PREPARED_STATEMENTS: 'false' });
    expect([first, second].map(preparedStatementsOf)).toEqual([false, false]);
    const ids = [agentId('unprepared'), agentId('unprepared')];
    for (let round = 0; round < 5; round++) {
      for (const [i, store] of [first, second].entries()) {
        const id = ids[i] as string;
        await store.saveInfo(id, info(id, round));
        await store.saveMessages(id, conversation(round + 1));
      }
    }
    for (const [i, store] of [second, first].entries()) {
      const id = ids[1 - i] as string;
      expect((await store.loadInfo(id))?.messageCount).toBe(4);
      expect(await store.loadMessages(id)).toEqual(conversation(5));
    }

    // The default (prepared, named after the statement's text): the second
    // store's Parse of a name the first one left on the shared connection fails.
    const preparedA = await storeFromEnv(pooler.url, {});
    const preparedB = await storeFromEnv(pooler.url, { KODE_POSTGRES_PREPARED_STATEMENTS: 'true' });
    expect([preparedA, preparedB].map(preparedStatementsOf)).toEqual([true, true]);
    const id = agentId('prepared');
    await preparedA.saveInfo(id, info(id));
    const failure = await preparedB.saveInfo(id, info(id)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure, 'a second store preparing the same name on the one server connection').toBeDefined();
    expect(JSON.stringify(failure, Object.getOwnPropertyNames(failure)) + String(failure)).toMatch(
      /prepared statement "kode_[0-9a-f]+" already exists/,
    );
  });

  it('refuses the store at open, naming statement_timeout, when PgBouncer is not told to ignore it', async () => {
    // PgBouncer's default: startup parameters it does not track are refused.
    const pooler = await bouncer({ poolMode: 'transaction', ignoreStartupParameters: [] });
    const opened = storeFromEnv(pooler.url, { KODE_POSTGRES_PREPARED_STATEMENTS: 'false' });
    await expect(opened).rejects.toMatchObject({
      code: expect.stringMatching(/^KODE_/),
      message: expect.stringContaining('statement_timeout'),
    });
  });

  it('works in session mode with prepared statements on: each client keeps its server connection', async () => {
    // At least the store's pool (10): in session mode every open client connection holds a server connection.
    const pooler = await bouncer({ poolMode: 'session', poolSize: 10 });
    const store = await storeFromEnv(pooler.url, {});
    expect(preparedStatementsOf(store)).toBe(true);
    const ids = Array.from({ length: 8 }, () => agentId('session'));
    await Promise.all(ids.map((id, i) => store.saveMessages(id, conversation(i + 1))));
    for (const [i, id] of ids.entries()) expect(await store.loadMessages(id)).toEqual(conversation(i + 1));
  });

  it('cannot work in statement mode: deletes, forks, migrations and KV writes are transactions, which it refuses', async () => {
    // Migrated directly first: the migration is a transaction too.
    const direct = new PostgresStore({ connection: requirePostgresUrl(), schema: place.schema });
    stores.push(direct);
    await direct.open();
    const pooler = await bouncer({ poolMode: 'statement' });
    const store = await storeFromEnv(pooler.url, { KODE_POSTGRES_PREPARED_STATEMENTS: 'false' });
    const id = agentId('statement');
    // Single statements pass.
    await store.saveInfo(id, info(id));
    await store.saveMessages(id, conversation(3));
    expect(await store.loadInfo(id)).toEqual(info(id));
    await expect(store.delete(id)).rejects.toThrow(/transaction blocks not allowed/);
    await expect(
      store.kv.set('bouncer', 'statement-mode', 'k', 1, { autoCreateInstance: true }),
    ).rejects.toThrow(/transaction blocks not allowed/);
  });
});
