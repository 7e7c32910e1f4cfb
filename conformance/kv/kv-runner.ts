import type { KvStore } from '../../src/kv/kv-types.js';
import { describeError } from '../runner/assertions.js';
import type { KvCase, KvCaseContext, KvSharedFixture, KvTestClock } from './kv-case.js';
import type { KvHarness } from './kv-harness.js';

/** The outcome of one case. */
export interface KvCaseResult {
  id: string;
  title: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Why a case was skipped. */
  reason?: string;
  /** Why a case failed. */
  error?: unknown;
  durationMs: number;
}

/** Options shared by `runKvConformance` and `verifyKvStore`. */
export interface KvConformanceOptions {
  /** Run only these cases: exact ids or id prefixes (`kv.ttl`). Unknown entries are an error. */
  only?: string[];
  /**
   * Leave these cases out of this run (exact ids or prefixes), e.g. to run
   * the long race cases in a test file of their own. Unknown entries are an
   * error. Unlike `harness.skip`, this says nothing about the backend.
   */
  exclude?: string[];
  /** Budget of one case in ms (default 30 000; races and fuzzing have their own). */
  caseTimeoutMs?: number;
}

const DEFAULT_CASE_TIMEOUT_MS = 30_000;

function matches(id: string, selector: string): boolean {
  return id === selector || id.startsWith(`${selector}.`);
}

/** Checks ids, the harness's skip list, `only` and `exclude`; returns the cases to run. Throws on any mistake. */
export function selectKvCases(cases: KvCase[], harness: KvHarness, options: KvConformanceOptions): KvCase[] {
  const ids = new Set<string>();
  for (const c of cases) {
    if (ids.has(c.id)) throw new Error(`kv conformance: duplicate case id ${c.id}`);
    ids.add(c.id);
  }
  for (const [id, reason] of Object.entries(harness.skip ?? {})) {
    if (!ids.has(id)) throw new Error(`kv conformance: harness ${harness.name} skips unknown case id ${id}`);
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new Error(`kv conformance: harness ${harness.name} skips ${id} without a reason`);
    }
  }
  for (const option of ['only', 'exclude'] as const) {
    const unknown = (options[option] ?? []).filter((selector) => !cases.some((c) => matches(c.id, selector)));
    if (unknown.length > 0)
      throw new Error(`kv conformance: '${option}' names unknown cases: ${unknown.join(', ')}`);
  }
  return cases.filter(
    (c) =>
      (!options.only || options.only.some((selector) => matches(c.id, selector))) &&
      !(options.exclude ?? []).some((selector) => matches(c.id, selector)),
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One run of the suite against one harness: one store (and one peer, when a
 * case asks), a shared clock, unique ids, shared fixtures.
 */
export class KvConformanceSession {
  /** Distinguishes this run's ids from any other run on the same database. */
  readonly runToken = Math.floor(Math.random() * 36 ** 6)
    .toString(36)
    .padStart(6, '0');
  private counter = 0;
  /**
   * The clock stands still unless a case moves it, so that expiry instants
   * can be hit to the millisecond (a real clock would move on between two
   * calls). The store still gives every write of a key a later updatedAt.
   */
  private time = Date.now();
  private store: Promise<KvStore> | undefined;
  private peerStore: Promise<KvStore> | undefined;
  private readonly fixtures = new Map<string, Promise<unknown>>();
  readonly clock: KvTestClock = {
    now: () => this.time,
    advance: (ms: number) => {
      if (!(ms >= 0)) throw new Error('the test clock only moves forward');
      this.time += ms;
    },
  };

  constructor(
    readonly harness: KvHarness,
    readonly options: KvConformanceOptions = {},
  ) {}

  private kv(): Promise<KvStore> {
    this.store ??= this.harness.create({ now: this.clock.now });
    return this.store;
  }

  unique(label = 'id'): string {
    return `kvc-${this.runToken}-${String(++this.counter).padStart(5, '0')}-${label}`;
  }

  /** Runs one case to its result; never throws. */
  async runCase(c: KvCase): Promise<KvCaseResult> {
    const started = performance.now();
    const result = (status: KvCaseResult['status'], extra: Partial<KvCaseResult> = {}): KvCaseResult => ({
      id: c.id,
      title: c.title,
      status,
      durationMs: performance.now() - started,
      ...extra,
    });
    const listed = this.harness.skip?.[c.id];
    if (listed !== undefined) return result('skipped', { reason: `skipped by the harness: ${listed}` });
    if (c.needsPeer && typeof this.harness.createPeer !== 'function') {
      return result('skipped', { reason: 'the harness has no createPeer (a second store on the same data)' });
    }
    const capabilities = this.harness.capabilities;
    const missing = (c.requires ?? []).find((capability) => capabilities?.[capability] === false);
    if (missing) {
      const why = capabilities?.reasons?.[missing];
      return result('skipped', { reason: `the backend does not declare ${missing}${why ? `: ${why}` : ''}` });
    }
    try {
      const kv = await this.kv();
      const budget = c.timeoutMs ?? this.options.caseTimeoutMs ?? DEFAULT_CASE_TIMEOUT_MS;
      await withTimeout(c.run(this.context(c, kv)), budget, `case ${c.id}`);
      return result('passed');
    } catch (error) {
      return result('failed', { error });
    }
  }

  private context(c: KvCase, kv: KvStore): KvCaseContext {
    const session = this;
    const label = c.id.split('.').slice(1).join('-');
    return {
      kv,
      harness: this.harness,
      clock: this.clock,
      unique: (suffix = label) => session.unique(suffix),
      async instance(suffix = label) {
        const created = await kv.createInstance({ name: `conformance ${c.id}`, id: session.unique(suffix) });
        return created.id;
      },
      peer() {
        const createPeer = session.harness.createPeer;
        if (!createPeer) throw new Error('the harness has no createPeer');
        session.peerStore ??= createPeer.call(session.harness, kv, { now: session.clock.now });
        return session.peerStore;
      },
      shared<T>(fixture: KvSharedFixture<T>): Promise<T> {
        let value = session.fixtures.get(fixture.name);
        if (!value) {
          value = fixture.setUp(kv, session.clock);
          // A failed set-up is retried by the next case rather than failing all of them the same way.
          value.catch(() => session.fixtures.delete(fixture.name));
          session.fixtures.set(fixture.name, value);
        }
        return value as Promise<T>;
      },
    };
  }

  /** Destroys the peer and the store (each once). */
  async tearDown(): Promise<void> {
    const errors: unknown[] = [];
    for (const pending of [this.peerStore, this.store]) {
      if (!pending) continue;
      try {
        await this.harness.destroy(await pending);
      } catch (error) {
        errors.push(error);
      }
    }
    this.peerStore = undefined;
    this.store = undefined;
    if (errors.length > 0) {
      throw new Error(`kv conformance teardown failed: ${errors.map(describeError).join('; ')}`);
    }
  }
}
