import type { KvStore } from '../../src/kv/kv-types.js';
import type { QueryableStore, SessionFilters } from '../../src/types.js';
import { kvOf } from '../kv-copy.js';
import type { OpenedLocation } from '../open-location.js';
import { JsonStoreAgents } from './json-store-agents.js';

/**
 * The read side of `QueryableStore`: everything the studio asks of a
 * location's agents. A kode-store backend is one as it is; a `json:`
 * directory gets one from `JsonStoreAgents`.
 */
export type StudioAgents = Pick<
  QueryableStore,
  | 'list'
  | 'exists'
  | 'loadInfo'
  | 'loadMessages'
  | 'loadToolCallRecords'
  | 'loadTodos'
  | 'readEvents'
  | 'listSnapshots'
  | 'loadSnapshot'
  | 'querySessions'
  | 'aggregateStats'
>;

export type SessionSort = NonNullable<SessionFilters['sortBy']>;

/** Totals over the whole location, where it can tell them cheaply. */
export interface FleetTotals {
  agents?: number;
  messages?: number;
  toolCalls?: number;
  events?: number;
  bytes?: number;
}

/** One opened location, as the studio sees it. */
export interface StudioSource {
  /** The location as it may be shown (credentials removed). */
  label: string;
  /** `sqlite`, `postgres`, `mongodb`, `json`, … */
  backend: string;
  agents: StudioAgents;
  /** The session orders this location can answer. */
  sessionSorts: readonly SessionSort[];
  totals(): Promise<FleetTotals>;
  /** The KV API; absent for `json:` directories, which hold no KV data. */
  kv?: KvStore;
}

const ALL_SORTS: readonly SessionSort[] = ['created_at', 'updated_at', 'message_count'];

/** The studio's view of an opened location. */
export function studioSourceOf(opened: OpenedLocation): StudioSource {
  if (opened.kind === 'json') {
    const agents = new JsonStoreAgents(opened.reader);
    return {
      label: opened.label,
      backend: 'json',
      agents,
      sessionSorts: agents.sessionSorts,
      totals: async () => ({ agents: (await agents.list()).length }),
    };
  }
  const { store } = opened;
  return {
    label: opened.label,
    backend: opened.backend,
    agents: store,
    sessionSorts: ALL_SORTS,
    totals: async () => {
      const { storage } = await store.getMetrics();
      return {
        agents: storage.totalAgents,
        messages: storage.totalMessages,
        toolCalls: storage.totalToolCalls,
        events: storage.totalEvents,
        bytes: storage.dbSizeBytes,
      };
    },
    kv: kvOf(opened),
  };
}
