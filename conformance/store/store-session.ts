import type { ExtendedStore, Store, StoreCapabilities } from '../../src/types.js';
import { describeError } from '../runner/assertions.js';
import { type CaseError, toCaseError } from '../runner/case-error.js';
import { withProfile } from '../runner/profile-scope.js';
import { plannedSkipReason, SelectionError, selectCases as selectSuiteCases } from '../runner/selection.js';
import { DEFAULT_CASE_TIMEOUT_MS, type Profile, type SuiteOptions } from '../runner/suite-options.js';
import type { Capability, CaseContext, HarnessFeature, SharedFixture, StoreCase } from './store-case.js';
import type { StoreHarness } from './store-harness.js';
import {
  detectLevel,
  LEVEL_INTERFACE,
  levelIncludes,
  missingMethods,
  STORE_LEVELS,
  type StoreLevel,
} from './store-levels.js';

/** The outcome of one case: plain data (`JSON.stringify` keeps all of it). */
export interface CaseResult {
  id: string;
  title: string;
  /** The level the case needs. */
  level: StoreLevel;
  /** The weakest profile the case belongs to. */
  profile: Profile;
  status: 'passed' | 'failed' | 'skipped';
  /** Why a case was skipped. */
  reason?: string;
  /** Why a case failed. */
  error?: CaseError;
  durationMs: number;
}

/** Options shared by `runStoreConformance` and `verifyStore` (the KV suite takes the same). */
export type ConformanceOptions = SuiteOptions<StoreLevel>;

/** Checks the case list, the skip lists, `only`, `exclude`, `levels` and `profile`; returns the cases to run. Throws on any mistake. */
export function selectCases(
  cases: StoreCase[],
  harness: StoreHarness,
  options: ConformanceOptions,
): StoreCase[] {
  if (harness.level !== undefined && !STORE_LEVELS.includes(harness.level)) {
    throw new SelectionError(
      `conformance: harness ${harness.name} declares level ${String(harness.level)}, not one of ${STORE_LEVELS.join(', ')}`,
    );
  }
  return selectSuiteCases('conformance', STORE_LEVELS, cases, harness, options);
}

const FEATURE_TEXT: Record<HarnessFeature, string> = {
  createPeer: 'the harness has no createPeer (a second store on the same data)',
  reopen: 'the harness has no reopen (close and open again on the same data)',
  lockInOtherProcess: 'the harness has no lockInOtherProcess (a lock holder in another process)',
};

/** The store's capabilities with the harness's overrides applied. */
function effectiveCapabilities(store: Store, harness: StoreHarness): StoreCapabilities {
  const declared = (store as { capabilities?: StoreCapabilities }).capabilities;
  const base: StoreCapabilities = declared ?? {
    crossInstanceLocks: false,
    crossProcessLocks: false,
    transactions: false,
    durable: false,
    fileEvents: false,
    reasons: {},
  };
  return {
    ...base,
    ...harness.capabilities,
    reasons: { ...base.reasons, ...harness.capabilities?.reasons },
  };
}

/** Why `c` cannot run before any store exists, or undefined. */
function staticSkipReason(
  c: StoreCase,
  harness: StoreHarness,
  options: ConformanceOptions,
): string | undefined {
  const planned = plannedSkipReason(c, harness, options);
  if (planned) return planned;
  for (const capability of c.requires ?? []) {
    if (harness.capabilities?.[capability] === false)
      return capabilityReason(capability, harness.capabilities);
  }
  return undefined;
}

/** The first harness feature `c` needs that the harness lacks, as a skip reason. */
function missingFeature(c: StoreCase, harness: StoreHarness): string | undefined {
  const feature = (c.needs ?? []).find((f) => typeof harness[f] !== 'function');
  return feature && FEATURE_TEXT[feature];
}

function capabilityReason(capability: Capability, caps: Partial<StoreCapabilities>): string {
  const why = caps.reasons?.[capability];
  return `the store does not declare ${capability}${why ? `: ${why}` : ''}`;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** How the session knows the store's level. */
export interface LevelFinding {
  level: StoreLevel;
  source: 'declared' | 'detected';
}

/**
 * One run of the suite against one harness: hands out unique agent ids,
 * creates and destroys each case's stores, keeps the shared fixtures, and
 * knows the store's level.
 */
export class ConformanceSession {
  /** Distinguishes this run's agent ids from any other run on the same database. */
  readonly runToken = Math.floor(Math.random() * 36 ** 6)
    .toString(36)
    .padStart(6, '0');
  private caseCounter = 0;
  private readonly fixtures = new Map<string, Promise<{ value: unknown; tearDown(): Promise<void> }>>();
  private levelFinding: Promise<LevelFinding> | undefined;

  constructor(
    readonly harness: StoreHarness,
    readonly options: ConformanceOptions = {},
  ) {}

  get profile(): Profile {
    return this.options.profile ?? 'strict';
  }

  /**
   * The store's level: the harness's declaration, or the highest level whose
   * methods the first store created has all of (a store is created for
   * that when no case has made one yet).
   */
  level(store?: Store): Promise<LevelFinding> {
    if (this.harness.level !== undefined) {
      this.levelFinding ??= Promise.resolve({ level: this.harness.level, source: 'declared' });
    }
    this.levelFinding ??= this.detect(store);
    return this.levelFinding;
  }

  private async detect(given: Store | undefined): Promise<LevelFinding> {
    const store = given ?? (await this.harness.create());
    try {
      const level = detectLevel(store);
      if (level === undefined) {
        throw new Error(
          `conformance: the stores of harness ${this.harness.name} lack methods of the SDK's Store: ` +
            missingMethods(store, 'store').join(', '),
        );
      }
      return { level, source: 'detected' };
    } finally {
      if (!given) await this.harness.destroy(store);
    }
  }

  /** The level found, once a case (or the detection) has made a store. */
  async runLevel(): Promise<LevelFinding | undefined> {
    return this.levelFinding;
  }

  /** Runs one case to its result; never throws. */
  async runCase(c: StoreCase): Promise<CaseResult> {
    const started = performance.now();
    const result = (status: CaseResult['status'], extra: Partial<CaseResult> = {}): CaseResult => ({
      id: c.id,
      title: c.title,
      level: c.level ?? 'store',
      profile: c.profile ?? 'strict',
      status,
      durationMs: performance.now() - started,
      ...extra,
    });
    const staticReason = staticSkipReason(c, this.harness, this.options);
    if (staticReason) return result('skipped', { reason: staticReason });

    const caseNo = String(++this.caseCounter).padStart(4, '0');
    const cleanups: Array<() => Promise<void>> = [];
    let failure: unknown;
    try {
      const budget = c.timeoutMs ?? this.options.caseTimeoutMs ?? DEFAULT_CASE_TIMEOUT_MS;
      const ctx = await this.context(c, caseNo, cleanups);
      if (typeof ctx === 'string') return result('skipped', { reason: ctx });
      await withProfile(this.profile, () => withTimeout(c.run(ctx), budget, `case ${c.id}`));
    } catch (error) {
      failure = error;
    } finally {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (error) {
          failure ??= new Error(`cleanup after ${c.id} failed: ${describeError(error)}`, { cause: error });
        }
      }
    }
    return failure === undefined ? result('passed') : result('failed', { error: toCaseError(failure) });
  }

  /** Builds the case's context, or returns the reason it must be skipped. */
  private async context(
    c: StoreCase,
    caseNo: string,
    cleanups: Array<() => Promise<void>>,
  ): Promise<CaseContext | string> {
    const harness = this.harness;
    let store: Store | undefined;
    let capabilities: StoreCapabilities = effectiveCapabilities({} as Store, harness);
    let finding: LevelFinding;
    if (c.freshStore !== false) {
      const created = await harness.create();
      store = created;
      cleanups.push(() => harness.destroy(store as Store));
      finding = await this.level(created);
      capabilities = effectiveCapabilities(created, harness);
    } else {
      finding = await this.level();
    }
    const needed = c.level ?? 'store';
    if (!levelIncludes(finding.level, needed)) {
      return (
        `the store implements ${LEVEL_INTERFACE[finding.level]} (${finding.source}), ` +
        `not ${LEVEL_INTERFACE[needed]}, which this case needs`
      );
    }
    if (store) {
      const missing = (c.requires ?? []).find((cap) => !capabilities[cap]);
      if (missing) return capabilityReason(missing, capabilities);
      const unsupported = c.unsupported?.(store);
      if (unsupported) return unsupported;
    }
    // Checked after the capabilities, so a store that lacks a capability says so rather than "no harness hook".
    const noFeature = missingFeature(c, harness);
    if (noFeature) return noFeature;
    let idCounter = 0;
    const session = this;
    const ctx: CaseContext = {
      get store(): ExtendedStore {
        if (!store) throw new Error(`case ${c.id} declared freshStore: false but used ctx.store`);
        return store as ExtendedStore;
      },
      harness,
      capabilities,
      level: finding.level,
      implements: (level) => levelIncludes(finding.level, level),
      agentId(label = 'agent', suffix = '') {
        idCounter++;
        return `cf-${session.runToken}-${caseNo}-${String(idCounter).padStart(3, '0')}-${label}${suffix}`;
      },
      async peer() {
        if (!store || !harness.createPeer) throw new Error('peer() needs a store and harness.createPeer');
        const peer = await harness.createPeer(store);
        // Closed, not destroyed: destroy may remove the data the case's own store still uses.
        cleanups.push(async () => {
          if (typeof (peer as Partial<ExtendedStore>).close === 'function')
            await (peer as ExtendedStore).close();
        });
        return peer as ExtendedStore;
      },
      async reopen() {
        if (!store || !harness.reopen) throw new Error('reopen() needs a store and harness.reopen');
        store = await harness.reopen(store);
        return store as ExtendedStore;
      },
      shared: <T>(fixture: SharedFixture<T>) => this.shared(fixture),
    };
    return ctx;
  }

  /** A fixture shared by the whole run, set up on first use. */
  shared<T>(fixture: SharedFixture<T>): Promise<T> {
    let entry = this.fixtures.get(fixture.name);
    if (!entry) {
      entry = fixture.setUp(this.harness);
      this.fixtures.set(fixture.name, entry);
    }
    return entry.then((e) => e.value as T);
  }

  /** Tears the shared fixtures down (idempotent). */
  async tearDown(): Promise<void> {
    const entries = [...this.fixtures.values()];
    this.fixtures.clear();
    for (const entry of entries) {
      const fixture = await entry.catch(() => undefined);
      await fixture?.tearDown();
    }
  }
}
