import type { Store } from '../../src/types.js';

/**
 * The three layers of the SDK's store interface, lowest first: `Store` (what
 * an agent needs to run and resume), `QueryableStore` (adds querySessions,
 * queryMessages, queryToolCalls, aggregateStats) and `ExtendedStore` (adds
 * healthCheck, checkConsistency, getMetrics, acquireAgentLock, batchFork,
 * close). A backend may implement any prefix of them.
 */
export type StoreLevel = 'store' | 'queryable' | 'extended';

/** The levels, lowest first. */
export const STORE_LEVELS: readonly StoreLevel[] = ['store', 'queryable', 'extended'];

/** The interface name of each level, for messages. */
export const LEVEL_INTERFACE: Record<StoreLevel, string> = {
  store: 'Store',
  queryable: 'QueryableStore',
  extended: 'ExtendedStore',
};

/** The methods each level adds to the one below. */
export const LEVEL_METHODS: Record<StoreLevel, readonly string[]> = {
  store: [
    'saveMessages',
    'loadMessages',
    'saveToolCallRecords',
    'loadToolCallRecords',
    'saveTodos',
    'loadTodos',
    'appendEvent',
    'readEvents',
    'saveHistoryWindow',
    'loadHistoryWindows',
    'saveCompressionRecord',
    'loadCompressionRecords',
    'saveRecoveredFile',
    'loadRecoveredFiles',
    'saveMediaCache',
    'loadMediaCache',
    'saveSnapshot',
    'loadSnapshot',
    'listSnapshots',
    'saveInfo',
    'loadInfo',
    'exists',
    'delete',
    'list',
  ],
  queryable: ['querySessions', 'queryMessages', 'queryToolCalls', 'aggregateStats'],
  extended: ['healthCheck', 'checkConsistency', 'getMetrics', 'acquireAgentLock', 'batchFork', 'close'],
};

/** Whether `have` includes `need` (`extended` includes every level). */
export function levelIncludes(have: StoreLevel, need: StoreLevel): boolean {
  return STORE_LEVELS.indexOf(have) >= STORE_LEVELS.indexOf(need);
}

/** The methods of `level` (and the levels below it) that `store` lacks. */
export function missingMethods(store: Store, level: StoreLevel): string[] {
  const levels = STORE_LEVELS.slice(0, STORE_LEVELS.indexOf(level) + 1);
  return levels.flatMap((l) =>
    LEVEL_METHODS[l].filter((m) => typeof (store as unknown as Record<string, unknown>)[m] !== 'function'),
  );
}

/**
 * The highest level whose methods `store` all has, or undefined when it
 * lacks some of `Store` itself. A store with all of `Store` and part of
 * `QueryableStore` is at level `store`: a level is implemented whole or not.
 */
export function detectLevel(store: Store): StoreLevel | undefined {
  let found: StoreLevel | undefined;
  for (const level of STORE_LEVELS) {
    if (missingMethods(store, level).length > 0) break;
    found = level;
  }
  return found;
}
