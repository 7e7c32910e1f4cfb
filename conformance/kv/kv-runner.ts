import type { KvStore } from '../../src/kv/kv-types.js';
import { describeError } from '../runner/assertions.js';
import { type CaseError, toCaseError } from '../runner/case-error.js';
import { withProfile } from '../runner/profile-scope.js';
import { plannedSkipReason, selectCases } from '../runner/selection.js';
import { DEFAULT_CASE_TIMEOUT_MS, type Profile, type SuiteOptions } from '../runner/suite-options.js';
import type { KvCase, KvCaseContext, KvSharedFixture, KvTestClock } from './kv-case.js';
import type { KvHarness } from './kv-harness.js';

/** The outcome of one case: plain data (`JSON.stringify` keeps all of it). */
export interface KvCaseResult {
  id: string;
  title: string;
  /** The KV suite has one level, `kv`. */
  level: KvLevel;
  /** The weakest profile the case belongs to. */
  profile: Profile;
  status: 'passed' | 'failed' | 'skipped';
  /** Why a case was skipped. */
  reason?: string;
  /** Why a case failed. */
  error?: CaseError;
  durationMs: number;
}

/** The KV suite's one level: a backend implements the whole `KvBackend` port or is not a KV backend. */
export type KvLevel = 'kv';
export const KV_LEVELS: readonly KvLevel[] = ['kv'];

/** Options shared by `runKvConformance` and `verifyKvStore`: the same as the agent-store suite's. */
export type KvConformanceOptions = SuiteOptions<KvLevel>;

/** Checks ids, the skip lists, `only`, `exclude`, `levels` and `profile`; returns the cases to run. Throws on any mistake. */
export function selectKvCases(cases: KvCase[], harness: KvHarness, options: KvConformanceOptions): KvCase[] {
  return selectCases('kv conformance', KV_LEVELS, cases, harness, options);
}

/** How far apart the store's clock and the suite's may be before the store is taken to ignore the suite's. */
const CLOCK_TOLERANCE_MS = 30_000;

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
  private clockProbe: Promise<string | undefined> | undefined;
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

  get profile(): Profile {
    return this.options.profile ?? 'strict';
  }

  async runLevel(): Promise<{ level: KvLevel; source: 'only' }> {
    return { level: 'kv', source: 'only' };
  }

  /**
   * Undefined when the store keeps time by the suite's clock, else what is
   * wrong and how to fix it. Found once per run: the suite's clock is moved a
   * minute ahead of the real time and a record written; a store on the real
   * clock stamps it a minute early.
   */
  clockProblem(): Promise<string | undefined> {
    this.clockProbe ??= (async () => {
      const kv = await this.kv();
      const { id } = await kv.createInstance({ name: 'conformance clock probe', id: this.unique('clock') });
      this.clock.advance(60_000);
      const record = await kv.set(id, 'probe', 'k', 1);
      const drift = Date.parse(record.updatedAt) - this.clock.now();
      if (Math.abs(drift) <= CLOCK_TOLERANCE_MS) return undefined;
      return (
        `the store does not use the clock the suite hands the harness (a record written at suite time ` +
        `${new Date(this.clock.now()).toISOString()} got updatedAt ${record.updatedAt}): ` +
        'pass it on, create: async ({ now }) => createKvStore(backend, { now }) ' +
        '(and createPeer: async (kv, { now }) => ... the same); cases that read or move the clock are not judged until then'
      );
    })();
    return this.clockProbe;
  }

  /** Runs one case to its result; never throws. */
  async runCase(c: KvCase): Promise<KvCaseResult> {
    const started = performance.now();
    const result = (status: KvCaseResult['status'], extra: Partial<KvCaseResult> = {}): KvCaseResult => ({
      id: c.id,
      title: c.title,
      level: 'kv',
      profile: c.profile ?? 'sdk',
      status,
      durationMs: performance.now() - started,
      ...extra,
    });
    const planned = plannedSkipReason(
      { ...c, level: 'kv', profile: c.profile ?? 'sdk' },
      this.harness,
      this.options,
    );
    if (planned) return result('skipped', { reason: planned });
    if (c.needsPeer && typeof this.harness.createPeer !== 'function') {
      return result('skipped', { reason: 'the harness has no createPeer (a second store on the same data)' });
    }
    const capabilities = this.harness.capabilities;
    const missing = (c.requires ?? []).find((capability) => capabilities?.[capability] === false);
    if (missing) {
      const why = capabilities?.reasons?.[missing];
      return result('skipped', { reason: `the backend does not declare ${missing}${why ? `: ${why}` : ''}` });
    }
    const timed = { clock: false };
    try {
      const kv = await this.kv();
      const budget = c.timeoutMs ?? this.options.caseTimeoutMs ?? DEFAULT_CASE_TIMEOUT_MS;
      await withProfile(this.profile, () =>
        withTimeout(c.run(this.context(c, kv, timed)), budget, `case ${c.id}`),
      );
      return result('passed');
    } catch (error) {
      // A store on the wrong clock fails every case that reads or moves time, all for the one reason
      // kv.harness.uses-suite-clock reports: those are left unjudged rather than failed a dozen times.
      const problem = timed.clock ? await this.clockProblem().catch(() => undefined) : undefined;
      if (problem) return result('skipped', { reason: `not judged: ${problem}` });
      return result('failed', { error: toCaseError(error) });
    }
  }

  private context(c: KvCase, kv: KvStore, timed: { clock: boolean }): KvCaseContext {
    const session = this;
    const label = c.id.split('.').slice(1).join('-');
    return {
      kv,
      harness: this.harness,
      clock: {
        now: () => {
          timed.clock = true;
          return session.clock.now();
        },
        advance: (ms: number) => {
          timed.clock = true;
          session.clock.advance(ms);
        },
      },
      clockProblem: () => session.clockProblem(),
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
