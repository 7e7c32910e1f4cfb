import { describe, expect, it } from 'vitest';
import {
  type CaseResult,
  formatResults,
  LEVEL_METHODS,
  matchesPattern,
  STORE_LEVELS,
  type StoreHarness,
  type StoreLevel,
  verifyKvStore,
  verifyStore,
} from '../../conformance/index.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import { MemoryKvBackend } from '../../src/kv/memory-kv.js';
import type { Message, ReadEventsOptions, Snapshot, Timeline } from '../../src/types.js';
import { MapStore } from '../fixtures/walkthrough/map-store.js';

/** The walkthrough's harness: a fresh MapStore per case, nothing to clean up. */
function mapHarness(make: () => MapStore = () => new MapStore()): StoreHarness<MapStore> {
  return { name: 'map-store', create: async () => make(), destroy: async () => {} };
}

const failedIds = (results: CaseResult[]) => results.filter((r) => r.status === 'failed').map((r) => r.id);

describe("the walkthrough's Map-backed store (the SDK guide's shape)", () => {
  it('passes the sdk profile at level store with no failure, and says which level and profile ran', async () => {
    const result = await verifyStore(mapHarness(), { profile: 'sdk' });
    expect(failedIds(result.results)).toEqual([]);
    expect(result.passed).toBeGreaterThan(130);
    expect(result.level).toEqual({ level: 'store', source: 'detected' });
    expect(result.byLevel.queryable).toEqual({ passed: 0, failed: 0, skipped: expect.any(Number) });
    const text = formatResults(result);
    expect(text).toContain('profile sdk, level store (detected)');
    expect(text).toContain(`sdk: ${result.passed}/${result.passed}, strict: not run`);
    expect(text).toMatch(/^levels: store (\d+)\/\1, queryable not run, extended not run$/m);
    // Levels it lacks are skipped with the reason, never failed.
    const grid = result.results.find((r) => r.id.startsWith('query-grid.'));
    expect(grid).toMatchObject({ status: 'skipped', level: 'queryable' });
    expect(grid?.reason).toMatch(/implements Store \(detected\), not QueryableStore/);
  });

  it('fails the strict profile on our own rules only: ids it does not refuse, no ValidationError', async () => {
    const result = await verifyStore(mapHarness(), {
      profile: 'strict',
      only: ['ids', 'bad-input.messages'],
    });
    const failed = failedIds(result.results);
    expect(failed).toContain('ids.invalid.empty');
    for (const id of failed) expect(result.results.find((r) => r.id === id)?.profile).toBe('strict');
    expect(formatResults(result)).toMatch(/^sdk: \d+\/\d+ \(judged strictly\), strict: \d+\/\d+$/m);
  });

  // Real bugs a Map-backed store can have: each must still fail the sdk profile.
  const bugs: Array<[name: string, caughtBy: string, make: () => MapStore]> = [
    [
      'events read back newest first',
      'events.append-order.awaited',
      () =>
        new (class extends MapStore {
          override async *readEvents(agentId: string, opts?: ReadEventsOptions): AsyncIterable<Timeline> {
            const all: Timeline[] = [];
            for await (const t of super.readEvents(agentId, opts)) all.push(t);
            yield* all.reverse();
          }
        })(),
    ],
    [
      'delete keeps the conversation',
      'delete.removes-everything',
      () =>
        new (class extends MapStore {
          override async delete(agentId: string): Promise<void> {
            const kept = await this.loadMessages(agentId);
            await super.delete(agentId);
            if (kept.length > 0) await this.saveMessages(agentId, kept);
          }
        })(),
    ],
    [
      'messages are kept by a prefix of the id (agents of one case share a conversation)',
      'ids.per-agent.messages-and-history',
      () => {
        const shared = new Map<string, Message[]>();
        return new (class extends MapStore {
          override saveMessages = async (id: string, messages: Message[]) => {
            shared.set(id.split('-').slice(0, 3).join('-'), structuredClone(messages));
          };
          override loadMessages = async (id: string) =>
            structuredClone(shared.get(id.split('-').slice(0, 3).join('-')) ?? []);
        })();
      },
    ],
    [
      'an upserted snapshot moves to the end of the list',
      'snapshots.upsert-keeps-place',
      () => {
        const lists = new Map<string, Snapshot[]>();
        return new (class extends MapStore {
          override async saveSnapshot(agentId: string, snapshot: Snapshot): Promise<void> {
            await super.saveSnapshot(agentId, snapshot);
            const others = (lists.get(agentId) ?? []).filter((s) => s.id !== snapshot.id);
            lists.set(agentId, [...others, structuredClone(snapshot)]);
          }
          override listSnapshots = async (agentId: string) => structuredClone(lists.get(agentId) ?? []);
        })();
      },
    ],
  ];
  for (const [bug, caughtBy, make] of bugs) {
    it(`catches a Map store whose ${bug} in ${caughtBy}, in the sdk profile`, async () => {
      const result = await verifyStore(mapHarness(make), { profile: 'sdk' });
      expect(failedIds(result.results)).toContain(caughtBy);
    });
  }
});

/**
 * MemoryStore seen through a proxy that shows only the methods of `level`
 * and below: the store a backend of that level would be. The reference
 * passes every case of its level in the strict profile, so no case of a
 * level uses a method of a higher one.
 */
function levelHarness(level: StoreLevel, declare = false): StoreHarness {
  const shown = new Set(
    STORE_LEVELS.slice(0, STORE_LEVELS.indexOf(level) + 1).flatMap((l) => LEVEL_METHODS[l]),
  );
  const real = new WeakMap<object, MemoryStore>();
  const view = (store: MemoryStore) => {
    const proxy = new Proxy(store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== 'function' || typeof key !== 'string') return value;
        if (LEVEL_METHODS.queryable.includes(key) || LEVEL_METHODS.extended.includes(key)) {
          if (!shown.has(key)) return undefined;
        }
        return value.bind(target);
      },
    });
    real.set(proxy, store);
    return proxy;
  };
  const unwrap = (store: object) => real.get(store) as MemoryStore;
  return {
    name: `memory as ${level}`,
    ...(declare ? { level } : {}),
    create: async () => view(new MemoryStore()),
    destroy: (store) => unwrap(store).close(),
    createPeer: async (store) => view(new MemoryStore({ database: unwrap(store).database })),
    reopen: async (store) => {
      await unwrap(store).close();
      return view(new MemoryStore({ database: unwrap(store).database }));
    },
  };
}

describe('levels', () => {
  for (const level of ['store', 'queryable'] as const) {
    it(`a ${level}-level store passes every case of its level in strict, the higher ones skipped`, async () => {
      const result = await verifyStore(levelHarness(level), { exclude: ['races'] });
      expect(failedIds(result.results)).toEqual([]);
      expect(result.level).toEqual({ level, source: 'detected' });
      for (const r of result.results.filter((x) => x.level === 'extended')) {
        expect(r.status).toBe('skipped');
        expect(r.reason).toMatch(/not ExtendedStore/);
      }
      expect(result.byLevel[level]?.passed).toBeGreaterThan(50);
    }, 120_000);
  }

  it('takes a declared level over the methods it finds, and says so', async () => {
    const result = await verifyStore(
      { ...levelHarness('extended'), level: 'store' },
      { only: ['locks.exclusion', 'events.since'] },
    );
    expect(result.level).toEqual({ level: 'store', source: 'declared' });
    expect(result.results.map((r) => [r.id, r.status])).toEqual([
      ['events.since', 'passed'],
      ['locks.exclusion', 'skipped'],
    ]);
    expect(result.results[1]?.reason).toMatch(/implements Store \(declared\)/);
  });

  it('runs only the levels asked for, skipping the others with that reason', async () => {
    const result = await verifyStore(new MemoryHarness(), {
      levels: ['extended'],
      only: ['locks.exclusion', 'events.since'],
    });
    expect(result.results.map((r) => [r.id, r.status])).toEqual([
      ['events.since', 'skipped'],
      ['locks.exclusion', 'passed'],
    ]);
    expect(result.results[0]?.reason).toMatch(/level store is not among the levels chosen/);
  });

  it('refuses an unknown level and a harness that lacks methods of Store itself', async () => {
    await expect(verifyStore(new MemoryHarness(), { levels: ['nope' as never] })).rejects.toThrow(
      /unknown levels nope/,
    );
    const half = await verifyStore(
      {
        name: 'half',
        create: async () => ({ saveMessages: async () => {} }) as never,
        destroy: async () => {},
      },
      { only: ['events.since'] },
    );
    expect(half.failed).toBeGreaterThan(0);
    expect(half.results[0]?.error?.message).toMatch(/lack methods of the SDK's Store: loadMessages/);
  });
});

/** MemoryStore's plain harness, as a class so that each test gets its own. */
class MemoryHarness implements StoreHarness<MemoryStore> {
  name = 'memory';
  create = async () => new MemoryStore();
  destroy = (store: MemoryStore) => store.close();
}

describe('selection by pattern', () => {
  it('matches ids, group prefixes ending at a dot, group.* and globs', () => {
    expect(matchesPattern('events.since', 'events')).toBe(true);
    expect(matchesPattern('events.since', 'events.*')).toBe(true);
    expect(matchesPattern('events-x.since', 'events')).toBe(false);
    expect(matchesPattern('events-x.since', 'events.*')).toBe(false);
    expect(matchesPattern('history.unknown-agent', '*.unknown-agent')).toBe(true);
    expect(matchesPattern('history.unknown-agents', '*.unknown-agent')).toBe(false);
    expect(matchesPattern('query.sort-asc.querySessions', 'query.*.querySessions')).toBe(true);
    expect(matchesPattern('a.b', 'a.b.c')).toBe(false);
  });

  it('skips a whole group from the harness (query-grid.*) with its reason, which is not an error', async () => {
    const result = await verifyStore(
      {
        ...new MemoryHarness(),
        skip: { 'query-grid.*': 'slow on this machine', '*.unknown-agent': 'elsewhere' },
      },
      { only: ['query-grid.querySessions', 'history.unknown-agent', 'events.since'] },
    );
    const byId = Object.fromEntries(result.results.map((r) => [r.id, r]));
    expect(byId['events.since']?.status).toBe('passed');
    expect(byId['history.unknown-agent']?.reason).toBe('skipped by the harness: elsewhere');
    const grid = result.results.filter((r) => r.id.startsWith('query-grid.'));
    expect(grid.length).toBeGreaterThan(10);
    for (const r of grid)
      expect(r).toMatchObject({ status: 'skipped', reason: 'skipped by the harness: slow on this machine' });
  });

  it("takes the run's own skip list, only and exclude by pattern, and refuses patterns that name nothing", async () => {
    const result = await verifyStore(new MemoryHarness(), {
      only: ['events.*'],
      exclude: ['events.stream'],
      skip: { 'events.since*': 'not this run' },
    });
    const ids = result.results.map((r) => r.id);
    expect(ids.every((id) => id.startsWith('events.') && !id.startsWith('events.stream.'))).toBe(true);
    expect(result.results.find((r) => r.id === 'events.since-and-channel')?.reason).toBe(
      'skipped by the run: not this run',
    );
    for (const options of [
      { only: ['query-grid.nope.*'] },
      { exclude: ['*.nope'] },
      { skip: { nope: 'x' } },
    ]) {
      await expect(verifyStore(new MemoryHarness(), options)).rejects.toThrow(/names unknown cases/);
    }
    await expect(verifyStore(new MemoryHarness(), { skip: { events: '' } })).rejects.toThrow(
      /without a reason/,
    );
    await expect(verifyStore(new MemoryHarness(), { profile: 'loose' as never })).rejects.toThrow(
      /unknown profile loose/,
    );
  });
});

describe('results are plain data', () => {
  it('survive JSON.stringify whole: a failure keeps its name, code, message and stack', async () => {
    const result = await verifyStore(mapHarness(), { only: ['ids.invalid.empty'] });
    const failure = result.results[0];
    expect(failure?.status).toBe('failed');
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(failure?.error).toMatchObject({
      name: 'ConformanceAssertionError',
      message: expect.stringMatching(/expected a rejection with code KODE_VALIDATION/),
      stack: expect.stringContaining('ConformanceAssertionError'),
    });
  });

  it('keep the code of a store error that failed a case', async () => {
    const result = await verifyStore(
      {
        name: 'closed',
        create: async () => {
          const store = new MemoryStore();
          await store.close();
          return store;
        },
        destroy: async () => {},
      },
      { only: ['events.since'] },
    );
    expect(result.results[0]?.error).toMatchObject({ name: 'StoreClosedError', code: 'KODE_STORE_CLOSED' });
  });
});

describe('the KV suite and its clock', () => {
  it("reports a harness that ignores the suite's clock once, naming the fix, instead of failing every timed case", async () => {
    const backend = new MemoryKvBackend();
    const result = await verifyKvStore(
      { name: 'real clock', create: async () => createKvStore(backend), destroy: async () => {} },
      { only: ['kv.harness', 'kv.ttl', 'kv.records.get-missing'] },
    );
    expect(failedIds(result.results as never)).toEqual(['kv.harness.uses-suite-clock']);
    expect(result.results[0]?.error?.message).toMatch(/createKvStore\(backend, \{ now \}\)/);
    const ttl = result.results.filter((r) => r.id.startsWith('kv.ttl.'));
    expect(ttl.filter((r) => r.status === 'skipped').length).toBeGreaterThan(5);
    for (const r of ttl.filter((x) => x.status === 'skipped'))
      expect(r.reason).toMatch(/^not judged: the store does not use the clock/);
    expect(result.results.find((r) => r.id === 'kv.records.get-missing')?.status).toBe('passed');
  });

  it('passes kv.harness.uses-suite-clock for a harness that hands the clock on', async () => {
    const backend = new MemoryKvBackend();
    const result = await verifyKvStore(
      {
        name: 'suite clock',
        create: async ({ now }) => createKvStore(backend, { now }),
        destroy: async () => {},
      },
      { only: ['kv.harness', 'kv.ttl'] },
    );
    expect(result.failed).toBe(0);
    expect(result.skipped).toBe(0);
    expect(result.level).toEqual({ level: 'kv', source: 'only' });
  });
});

describe('the walkthrough document', () => {
  it('shows the store the tests run, word for word', async () => {
    const { readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '..', '..');
    const doc = await readFile(join(root, 'docs/conformance.md'), 'utf8');
    const store = await readFile(join(root, 'test/fixtures/walkthrough/map-store.ts'), 'utf8');
    expect(doc).toContain(store.replace("'../../../src/types.js'", "'kode-store'").trimEnd());
  });
});
