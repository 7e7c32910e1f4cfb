import Database from 'better-sqlite3';
import pLimit from 'p-limit';
import pg from 'pg';
import type { BenchStore, StoreLocation } from '../backends.js';
import type { Measurement } from '../bench-result.js';
import { kvValue } from '../data.js';
import { median, medianOfRuns, quantile, timeMs } from '../measure.js';
import type { RawKv } from '../raw/raw-baseline.js';
import { type Workload, type WorkloadContext, withFreshBackend } from '../workload.js';

/**
 * (g) The KV namespace API: sets, gets, a two-condition query with order
 * and limit, and the two calls a UI makes on every view (`getRecordCount`,
 * `getNamespaces`), which must stay fast at 50,000 records.
 *
 * Each set is a durable commit, so the set rate is measured over a few
 * thousand awaited sets and the rest of the 50,000 records is written with
 * `setMany`; the gets are 50,000 in all over the measured runs.
 */

/** The part of the KV API (SPEC §6) the workload calls, declared here so the benchmark loads without it. */
interface BenchKv {
  createInstance(input: { name: string; id?: string }): Promise<unknown>;
  set(instanceId: string, namespace: string, key: string, value: unknown): Promise<unknown>;
  setMany(
    instanceId: string,
    items: Array<{ namespace: string; key: string; value: unknown }>,
  ): Promise<unknown>;
  get(instanceId: string, namespace: string, key: string): Promise<{ exists: boolean }>;
  query(query: object): Promise<{ records: unknown[]; total: number }>;
  getRecordCount(instanceId: string, namespace?: string): Promise<number>;
  getNamespaces(instanceId: string): Promise<string[]>;
}

const KV_METHODS = ['createInstance', 'set', 'setMany', 'get', 'query', 'getRecordCount', 'getNamespaces'];

function isBenchKv(value: unknown): value is BenchKv {
  return (
    typeof value === 'object' &&
    value !== null &&
    KV_METHODS.every((name) => typeof (value as Record<string, unknown>)[name] === 'function')
  );
}

/** A KV API to measure, how it was reached, and what to close afterwards. */
interface OpenedKv {
  kv: BenchKv;
  /** How the KV API was reached, for the report. */
  via: string;
  close(): Promise<void>;
}

/**
 * The store's KV API: `store.kv`, or `createKvStore(store.kvBackend())`,
 * when the store has one. Until the stores expose it, the KV backend of the same database is opened beside the store
 * (`createKvStore(new SqliteKvBackend(db))` on the store's file, with the
 * store's WAL and `synchronous=FULL`; `new PostgresKvBackend(pool, { schema })`
 * in the store's schema); the in-memory reference uses `createKvStore()`.
 * Loaded on demand, so the benchmark runs whether or not the KV layer exists.
 */
async function openKv(store: BenchStore, location: StoreLocation): Promise<OpenedKv | string> {
  if (isBenchKv(store.kv)) return { kv: store.kv, via: 'store.kv', close: async () => undefined };
  let createKvStore: (backend?: never) => unknown;
  try {
    ({ createKvStore } = (await import('../../src/kv/index.js')) as unknown as {
      createKvStore: (backend?: never) => unknown;
    });
  } catch (error) {
    return `src/kv could not be loaded (${(error as Error).message})`;
  }
  const checked = (kv: unknown, via: string, close: () => Promise<void>): OpenedKv | string =>
    isBenchKv(kv) ? { kv, via, close } : `${via} does not have the KV API this workload calls`;
  const kvBackend = (store as { kvBackend?: unknown }).kvBackend;
  if (typeof kvBackend === 'function') {
    return checked(
      createKvStore(kvBackend.call(store) as never),
      'createKvStore(store.kvBackend())',
      async () => undefined,
    );
  }
  try {
    switch (location.kind) {
      case 'memory':
        return checked(createKvStore(), 'createKvStore() (in memory)', async () => undefined);
      case 'sqlite': {
        const { SqliteKvBackend } = await import('../../adapters/sqlite/sqlite-kv.js');
        const db = new Database(location.path);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        return checked(
          createKvStore(new SqliteKvBackend(db) as never),
          'SqliteKvBackend on the store file (store.kv not wired yet)',
          async () => {
            db.close();
          },
        );
      }
      case 'postgres': {
        const { PostgresKvBackend } = await import('../../adapters/postgres/postgres-kv.js');
        const pool = new pg.Pool({ connectionString: location.url, application_name: 'kode-store-bench-kv' });
        return checked(
          createKvStore(new PostgresKvBackend(pool, { schema: location.schema }) as never),
          'PostgresKvBackend in the store schema (store.kv not wired yet)',
          () => pool.end(),
        );
      }
    }
  } catch (error) {
    return `the ${location.kind} KV backend could not be opened (${(error as Error).message})`;
  }
}

const INSTANCE = 'bench-kv';
const BATCH = 1000;

/** Measures the KV API `kv` (reached `via` a store or a backend) against the raw driver's `rawKv`. */
async function measureKv(
  context: WorkloadContext,
  kv: BenchKv,
  rawKv: RawKv | undefined,
  via: string,
): Promise<Measurement[]> {
  const profile = context.profile.kv;
  const namespaceOf = (n: number) => `ns-${n % profile.namespaces}`;
  const keyOf = (n: number) => `key-${String(n).padStart(6, '0')}`;
  await kv.createInstance({ name: 'bench', id: INSTANCE });
  const results: Measurement[] = [];

  // Keys are written in order; each subject keeps its own cursor into them.
  let storeNext = 0;
  let rawNext = 0;
  const setsOf = (run: number) =>
    run < 0 ? Math.ceil(profile.timedSetsPerRun / 10) : profile.timedSetsPerRun;
  const sets = await medianOfRuns(
    context.profile.runs,
    {
      store: async (run) => {
        const from = storeNext;
        storeNext += setsOf(run);
        const ms = await timeMs(async () => {
          for (let n = from; n < storeNext; n++) await kv.set(INSTANCE, namespaceOf(n), keyOf(n), kvValue(n));
        });
        return { rate: ((storeNext - from) / ms) * 1000 };
      },
      raw: rawKv
        ? async (run) => {
            const from = rawNext;
            rawNext += setsOf(run);
            const ms = await timeMs(async () => {
              for (let n = from; n < rawNext; n++)
                await rawKv.set(INSTANCE, namespaceOf(n), keyOf(n), kvValue(n));
            });
            return { rate: ((rawNext - from) / ms) * 1000 };
          }
        : undefined,
    },
    (run) => context.phase(`awaited sets, ${run < 0 ? 'warm-up' : `run ${run + 1}`}`),
  );
  results.push({
    metric: `set, awaited one by one (${context.profile.runs} × ${profile.timedSetsPerRun})`,
    value: sets.store!.rate!,
    unit: 'sets/s',
    raw: sets.raw?.rate ?? null,
    note: `${via}; raw: one upsert commit per set`,
  });

  context.phase(`filling to ${profile.records} records with setMany`);
  for (let from = storeNext; from < profile.records; from += BATCH) {
    const items = [];
    for (let n = from; n < Math.min(profile.records, from + BATCH); n++) {
      items.push({ namespace: namespaceOf(n), key: keyOf(n), value: kvValue(n) });
    }
    await kv.setMany(INSTANCE, items);
  }
  if (rawKv) {
    for (let from = rawNext; from < profile.records; from += BATCH) {
      const items = [];
      for (let n = from; n < Math.min(profile.records, from + BATCH); n++) {
        items.push({ namespace: namespaceOf(n), key: keyOf(n), value: kvValue(n) });
      }
      await rawKv.setMany(INSTANCE, items);
    }
  }

  // A fixed, scattered order of existing keys, read by several callers at
  // once (as a server answering many users does), each awaiting its reads.
  const getsOf = (run: number) => (run < 0 ? Math.ceil(profile.getsPerRun / 10) : profile.getsPerRun);
  const scattered = (i: number) => (i * 7919) % profile.records;
  const readAll = async (run: number, get: (n: number) => Promise<void>) => {
    const count = getsOf(run);
    const limit = pLimit(profile.getConcurrency);
    const ms = await timeMs(() =>
      limit.map(
        Array.from({ length: count }, (_, i) => scattered(i + (run + 1) * count)),
        get,
      ),
    );
    return { rate: (count / ms) * 1000 };
  };
  const gets = await medianOfRuns(
    context.profile.runs,
    {
      store: (run) =>
        readAll(run, async (n) => {
          if (!(await kv.get(INSTANCE, namespaceOf(n), keyOf(n))).exists) {
            throw new Error(`KV record ${keyOf(n)} is missing`);
          }
        }),
      raw: rawKv
        ? (run) =>
            readAll(run, async (n) => {
              await rawKv.get(INSTANCE, namespaceOf(n), keyOf(n));
            })
        : undefined,
    },
    (run) => context.phase(`gets, ${run < 0 ? 'warm-up' : `run ${run + 1}`}`),
  );
  results.push({
    metric: `get (${context.profile.runs} × ${profile.getsPerRun}, ${profile.getConcurrency} in flight)`,
    value: gets.store!.rate!,
    unit: 'gets/s',
    raw: gets.raw?.rate ?? null,
    note: 'raw: SELECT by primary key + JSON.parse',
  });

  const repeated = async (
    metric: string,
    call: () => Promise<unknown>,
    options: { target?: boolean; describe?: (result: unknown) => string } = {},
  ) => {
    context.phase(metric);
    let last: unknown = await call();
    const times: number[] = [];
    for (let i = 0; i < profile.queryRepeats; i++) {
      times.push(await timeMs(async () => (last = await call())));
    }
    const described = options.describe ? `${options.describe(last)}; ` : '';
    results.push({
      metric,
      value: median(times),
      unit: 'ms',
      ...(options.target ? { target: { kind: 'max' as const, limit: 5, unit: 'ms' } } : {}),
      note: `${described}p95 ${quantile(times, 0.95).toFixed(2)} ms, ${profile.records} records`,
    });
  };
  await repeated(
    'query: 2 conditions, orderBy, limit 20',
    () =>
      kv.query({
        from: { instance: INSTANCE, namespace: namespaceOf(3) },
        where: [
          { field: 'value.status', operator: 'eq', value: 'active' },
          { field: 'value.score', operator: 'gte', value: 500 },
        ],
        orderBy: { field: 'value.score', direction: 'desc' },
        limit: 20,
      }),
    { describe: (result) => `${(result as { total: number }).total} matches` },
  );
  await repeated('getRecordCount (instance)', () => kv.getRecordCount(INSTANCE), {
    target: true,
    describe: (count) => `${count as number} counted`,
  });
  await repeated('getNamespaces', () => kv.getNamespaces(INSTANCE), {
    target: true,
    describe: (names) => `${(names as string[]).length} namespaces`,
  });
  return results;
}

export const kvWorkload: Workload = {
  id: 'g-kv',
  title: 'KV: set, get, query, getRecordCount, getNamespaces',
  touchesEvents: false,
  async run(context) {
    return withFreshBackend(context, 'kv', async ({ store, raw, location }) => {
      const opened = await openKv(store, location);
      if (typeof opened === 'string') return { skipped: opened };
      try {
        return await measureKv(context, opened.kv, raw?.kv, opened.via);
      } finally {
        await opened.close();
      }
    });
  },
};
