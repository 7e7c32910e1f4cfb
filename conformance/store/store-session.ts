import type { ExtendedStore, StoreCapabilities } from '../../src/types.js';
import { describeError } from '../runner/assertions.js';
import type { Capability, CaseContext, HarnessFeature, SharedFixture, StoreCase } from './store-case.js';
import type { StoreHarness } from './store-harness.js';

/** The outcome of one case. */
export interface CaseResult {
  id: string;
  title: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Why a case was skipped. */
  reason?: string;
  /** Why a case failed. */
  error?: unknown;
  durationMs: number;
}

/** Options shared by `runStoreConformance` and `verifyStore`. */
export interface ConformanceOptions {
  /** Run only these cases: exact ids, or id prefixes such as `events` or `locks.cross-instance`. Unknown entries are an error. */
  only?: string[];
  /** Budget of one case, in ms (default 30 000). */
  caseTimeoutMs?: number;
}

const DEFAULT_CASE_TIMEOUT_MS = 30_000;

function matches(id: string, selector: string): boolean {
  return id === selector || id.startsWith(`${selector}.`);
}

/** Checks the case list, the harness's skip list and `only`; returns the cases to run. Throws on any mistake. */
export function selectCases(
  cases: StoreCase[],
  harness: StoreHarness,
  options: ConformanceOptions,
): StoreCase[] {
  const ids = new Set<string>();
  for (const c of cases) {
    if (ids.has(c.id)) throw new Error(`conformance: duplicate case id ${c.id}`);
    ids.add(c.id);
  }
  const unknownSkips = Object.keys(harness.skip ?? {}).filter((id) => !ids.has(id));
  if (unknownSkips.length > 0) {
    throw new Error(
      `conformance: harness ${harness.name} skips unknown case ids: ${unknownSkips.join(', ')}`,
    );
  }
  for (const [id, reason] of Object.entries(harness.skip ?? {})) {
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new Error(`conformance: harness ${harness.name} skips ${id} without a reason`);
    }
  }
  if (!options.only) return cases;
  const unknownOnly = options.only.filter((sel) => !cases.some((c) => matches(c.id, sel)));
  if (unknownOnly.length > 0)
    throw new Error(`conformance: 'only' names unknown cases: ${unknownOnly.join(', ')}`);
  return cases.filter((c) => options.only?.some((sel) => matches(c.id, sel)));
}

const FEATURE_TEXT: Record<HarnessFeature, string> = {
  createPeer: 'the harness has no createPeer (a second store on the same data)',
  reopen: 'the harness has no reopen (close and open again on the same data)',
  lockInOtherProcess: 'the harness has no lockInOtherProcess (a lock holder in another process)',
};

/** The store's capabilities with the harness's overrides applied. */
function effectiveCapabilities(store: ExtendedStore, harness: StoreHarness): StoreCapabilities {
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
function staticSkipReason(c: StoreCase, harness: StoreHarness): string | undefined {
  const listed = harness.skip?.[c.id];
  if (listed !== undefined) return `skipped by the harness: ${listed}`;
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

/**
 * One run of the suite against one harness: hands out unique agent ids,
 * creates and destroys each case's stores, and keeps the shared fixtures.
 */
export class ConformanceSession {
  /** Distinguishes this run's agent ids from any other run on the same database. */
  readonly runToken = Math.floor(Math.random() * 36 ** 6)
    .toString(36)
    .padStart(6, '0');
  private caseCounter = 0;
  private readonly fixtures = new Map<string, Promise<{ value: unknown; tearDown(): Promise<void> }>>();

  constructor(
    readonly harness: StoreHarness,
    readonly options: ConformanceOptions = {},
  ) {}

  /** Runs one case to its result; never throws. */
  async runCase(c: StoreCase): Promise<CaseResult> {
    const started = performance.now();
    const result = (status: CaseResult['status'], extra: Partial<CaseResult> = {}): CaseResult => ({
      id: c.id,
      title: c.title,
      status,
      durationMs: performance.now() - started,
      ...extra,
    });
    const staticReason = staticSkipReason(c, this.harness);
    if (staticReason) return result('skipped', { reason: staticReason });

    const caseNo = String(++this.caseCounter).padStart(4, '0');
    const cleanups: Array<() => Promise<void>> = [];
    let failure: unknown;
    try {
      const budget = c.timeoutMs ?? this.options.caseTimeoutMs ?? DEFAULT_CASE_TIMEOUT_MS;
      const ctx = await this.context(c, caseNo, cleanups);
      if (typeof ctx === 'string') return result('skipped', { reason: ctx });
      await withTimeout(c.run(ctx), budget, `case ${c.id}`);
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
    return failure === undefined ? result('passed') : result('failed', { error: failure });
  }

  /** Builds the case's context, or returns the reason it must be skipped. */
  private async context(
    c: StoreCase,
    caseNo: string,
    cleanups: Array<() => Promise<void>>,
  ): Promise<CaseContext | string> {
    const harness = this.harness;
    let store: ExtendedStore | undefined;
    let capabilities: StoreCapabilities = effectiveCapabilities({} as ExtendedStore, harness);
    if (c.freshStore !== false) {
      const created = await harness.create();
      store = created;
      cleanups.push(() => harness.destroy(store as ExtendedStore));
      capabilities = effectiveCapabilities(created, harness);
      const missing = (c.requires ?? []).find((cap) => !capabilities[cap]);
      if (missing) return capabilityReason(missing, capabilities);
    }
    // Checked after the capabilities, so a store that lacks a capability says so rather than "no harness hook".
    const noFeature = missingFeature(c, harness);
    if (noFeature) return noFeature;
    let idCounter = 0;
    const session = this;
    const ctx: CaseContext = {
      get store(): ExtendedStore {
        if (!store) throw new Error(`case ${c.id} declared freshStore: false but used ctx.store`);
        return store;
      },
      harness,
      capabilities,
      agentId(label = 'agent', suffix = '') {
        idCounter++;
        return `cf-${session.runToken}-${caseNo}-${String(idCounter).padStart(3, '0')}-${label}${suffix}`;
      },
      async peer() {
        if (!store || !harness.createPeer) throw new Error('peer() needs a store and harness.createPeer');
        const peer = await harness.createPeer(store);
        cleanups.push(() => peer.close());
        return peer;
      },
      async reopen() {
        if (!store || !harness.reopen) throw new Error('reopen() needs a store and harness.reopen');
        store = await harness.reopen(store);
        return store;
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
