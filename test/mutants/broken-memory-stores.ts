import { type MemoryDatabase, MemoryStore } from '../../src/agent/memory-store.js';
import { commonPrefixLength } from '../../src/agent/record-fields.js';
import type {
  AgentInfo,
  AgentStats,
  ConsistencyCheckResult,
  LockReleaseFn,
  Message,
  MessageFilters,
  ReadEventsOptions,
  SessionFilters,
  Snapshot,
  StoreMetrics,
  Timeline,
  ToolCallFilters,
  ToolCallRecord,
} from '../../src/types.js';

/**
 * Deliberately broken copies of MemoryStore, each with one bug a real backend
 * could plausibly have. The conformance suite must catch every one of them.
 */

/** Applies `change` to every plain value inside `value` (objects and arrays rebuilt). */
function mapDeep(value: unknown, change: (v: unknown) => unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => mapDeep(v, change));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const mapped = mapDeep(v, change);
      if (mapped !== undefined) out[k] = mapped;
    }
    return out;
  }
  return change(value);
}

function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeysDeep((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** An iterable whose items are produced (all at once) when iteration starts. */
function lazy<T>(produce: () => Promise<T[]>): AsyncIterable<T> {
  return {
    async *[Symbol.asyncIterator]() {
      yield* await produce();
    },
  };
}

async function drain<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The one table of tool calls by call id that `tool-calls-keyed-by-call-id` shares between agents. */
const toolCallsByCallId = new Map<string, ToolCallRecord>();

/** A broken store and the bug it has. */
export interface Mutant {
  name: string;
  /** A case that must fail for this mutant: the rule the bug breaks. */
  caughtBy: string;
  bug: string;
  /** The bug is only against kode-store's error classes and codes, which the sdk profile does not judge. */
  codesOnly?: boolean;
  make(database?: MemoryDatabase): MemoryStore;
}

function mutant(
  name: string,
  caughtBy: string,
  bug: string,
  Broken: new (options: { database?: MemoryDatabase }) => MemoryStore,
): Mutant {
  return { name, caughtBy, bug, make: (database) => new Broken({ database }) };
}

export const mutants: Mutant[] = [
  mutant(
    'delete-leaves-messages',
    'delete.removes-everything',
    'delete removes every record but the conversation',
    class extends MemoryStore {
      override async delete(agentId: string): Promise<void> {
        const kept = await this.loadMessages(agentId);
        await super.delete(agentId);
        if (kept.length > 0) await this.saveMessages(agentId, kept);
      }
    },
  ),
  mutant(
    'tool-calls-keyed-by-call-id',
    'ids.per-agent.tool-calls',
    'tool-call records are kept by their id alone, so two agents with the same call ids share them',
    class extends MemoryStore {
      override async saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void> {
        for (const record of records) toolCallsByCallId.set(record.id, record);
        return super.saveToolCallRecords(agentId, records);
      }
      override async loadToolCallRecords(agentId: string): Promise<ToolCallRecord[]> {
        return (await super.loadToolCallRecords(agentId)).map((r) => toolCallsByCallId.get(r.id) ?? r);
      }
    },
  ),
  mutant(
    'drops-last-event',
    'events.append-order.awaited',
    'readEvents never yields the last entry',
    class extends MemoryStore {
      override readEvents(agentId: string, opts?: ReadEventsOptions): AsyncIterable<Timeline> {
        return lazy(async () => (await drain(super.readEvents(agentId, opts))).slice(0, -1));
      }
    },
  ),
  mutant(
    'reorders-unawaited-appends',
    'events.append-order.unawaited-500',
    'every other appendEvent waits a moment first, so un-awaited appends land out of order',
    class extends MemoryStore {
      private calls = 0;
      override async appendEvent(agentId: string, timeline: Timeline): Promise<void> {
        if (this.calls++ % 2 === 1) await sleep(1);
        return super.appendEvent(agentId, timeline);
      }
    },
  ),
  mutant(
    'sorts-events-by-seq',
    'events.seq-reuse',
    'readEvents orders by bookmark.seq instead of append order',
    class extends MemoryStore {
      override readEvents(agentId: string, opts?: ReadEventsOptions): AsyncIterable<Timeline> {
        return lazy(async () =>
          (await drain(super.readEvents(agentId, opts))).sort((a, b) => a.bookmark.seq - b.bookmark.seq),
        );
      }
    },
  ),
  mutant(
    'since-inclusive',
    'events.since',
    'since keeps seq >= since.seq instead of seq > since.seq',
    class extends MemoryStore {
      override readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
        if (!opts.since) return super.readEvents(agentId, opts);
        const since = { ...opts.since, seq: opts.since.seq - 1 };
        return super.readEvents(agentId, { ...opts, since });
      }
    },
  ),
  mutant(
    'ignores-channel',
    'events.channel',
    'readEvents ignores the channel option',
    class extends MemoryStore {
      override readEvents(agentId: string, opts: ReadEventsOptions = {}): AsyncIterable<Timeline> {
        return super.readEvents(agentId, { since: opts.since });
      }
    },
  ),
  mutant(
    'ignores-offset',
    'query.offset-without-limit.querySessions',
    'queries ignore offset',
    class extends MemoryStore {
      override querySessions(f: SessionFilters) {
        return super.querySessions({ ...f, offset: undefined });
      }
      override queryMessages(f: MessageFilters) {
        return super.queryMessages({ ...f, offset: undefined });
      }
      override queryToolCalls(f: ToolCallFilters) {
        return super.queryToolCalls({ ...f, offset: undefined });
      }
    },
  ),
  mutant(
    'limit-zero-returns-all',
    'query.limit-zero.queryMessages',
    'limit 0 is treated as "no limit"',
    class extends MemoryStore {
      override queryMessages(f: MessageFilters) {
        return super.queryMessages({ ...f, limit: f.limit || undefined });
      }
      override queryToolCalls(f: ToolCallFilters) {
        return super.queryToolCalls({ ...f, limit: f.limit || undefined });
      }
    },
  ),
  mutant(
    'no-default-limit',
    'query.limit-default-100.querySessions',
    'a query without limit returns every row instead of 100',
    class extends MemoryStore {
      override querySessions(f: SessionFilters) {
        return super.querySessions({ ...f, limit: f.limit ?? 1_000_000 });
      }
    },
  ),
  mutant(
    'sees-other-agents-messages',
    'query.messages.agent-scope',
    "queryMessages ignores agentId, so one agent sees another's rows",
    class extends MemoryStore {
      override queryMessages(f: MessageFilters) {
        return super.queryMessages({ ...f, agentId: undefined });
      }
    },
  ),
  mutant(
    'snapshots-not-per-agent',
    'snapshots.load-unknown-id',
    "loadSnapshot falls back to another agent's snapshot with the same id",
    class extends MemoryStore {
      override async loadSnapshot(agentId: string, snapshotId: string): Promise<Snapshot | undefined> {
        const own = await super.loadSnapshot(agentId, snapshotId);
        if (own) return own;
        for (const other of await this.list()) {
          const found = await super.loadSnapshot(other, snapshotId);
          if (found) return found;
        }
        return undefined;
      }
    },
  ),
  mutant(
    'lock-does-not-exclude',
    'locks.exclusion',
    'acquireAgentLock always succeeds at once',
    class extends MemoryStore {
      override async acquireAgentLock(): Promise<LockReleaseFn> {
        return async () => undefined;
      }
    },
  ),
  {
    ...mutant(
      'untyped-lock-timeout',
      'locks.timeout',
      'a lock timeout is a plain Error without the KODE_LOCK_TIMEOUT code',
      class extends MemoryStore {
        override async acquireAgentLock(agentId: string, timeoutMs?: number): Promise<LockReleaseFn> {
          try {
            return await super.acquireAgentLock(agentId, timeoutMs);
          } catch {
            throw new Error('could not get the lock');
          }
        }
      },
    ),
    codesOnly: true,
  },
  mutant(
    'one-lock-for-all-forks',
    'locks.prefix-ids-separate',
    "locks are taken on the id's root (before the first '/'), so a fork shares its parent's lock",
    class extends MemoryStore {
      override acquireAgentLock(agentId: string, timeoutMs?: number): Promise<LockReleaseFn> {
        return super.acquireAgentLock(agentId.split('/')[0] ?? agentId, timeoutMs);
      }
    },
  ),
  mutant(
    'loses-falsy-values',
    'messages.roundtrip.falsy-values',
    'saveMessages drops properties whose value is 0, false or ""',
    class extends MemoryStore {
      override saveMessages(agentId: string, messages: Message[]): Promise<void> {
        const stripped = Array.isArray(messages)
          ? (mapDeep(messages, (v) => (v === 0 || v === false || v === '' ? undefined : v)) as Message[])
          : messages;
        return super.saveMessages(agentId, stripped);
      }
    },
  ),
  mutant(
    'sorts-object-keys',
    'messages.roundtrip.key-order',
    'saveMessages stores objects with their keys sorted',
    class extends MemoryStore {
      override saveMessages(agentId: string, messages: Message[]): Promise<void> {
        return super.saveMessages(
          agentId,
          Array.isArray(messages) ? (sortKeysDeep(messages) as Message[]) : messages,
        );
      }
    },
  ),
  mutant(
    'strips-nul',
    'messages.roundtrip.nul-in-text',
    'saveMessages removes NUL characters from text',
    class extends MemoryStore {
      override saveMessages(agentId: string, messages: Message[]): Promise<void> {
        const stripped = Array.isArray(messages)
          ? (mapDeep(messages, (v) => (typeof v === 'string' ? v.replaceAll('\u0000', '') : v)) as Message[])
          : messages;
        return super.saveMessages(agentId, stripped);
      }
    },
  ),
  mutant(
    'numbers-as-strings',
    'toolcalls.roundtrip.numbers-stay-numbers',
    'tool-call timestamps are stored as numeric strings',
    class extends MemoryStore {
      override saveToolCallRecords(agentId: string, records: ToolCallRecord[]): Promise<void> {
        const changed = Array.isArray(records)
          ? records.map((r) => ({ ...r, createdAt: String(r.createdAt) as unknown as number }))
          : records;
        return super.saveToolCallRecords(agentId, changed);
      }
    },
  ),
  mutant(
    'nulls-absent-fields',
    'no-ordering-trap.partial-info',
    'saveInfo fills absent optional fields with null',
    class extends MemoryStore {
      override saveInfo(agentId: string, info: AgentInfo): Promise<void> {
        return super.saveInfo(agentId, {
          breakpoint: null,
          lastBookmark: null,
          metadata: null,
          ...info,
        } as never);
      }
    },
  ),
  mutant(
    'restamps-message-times',
    'query.messages.created-after-finds-only-new',
    'every saveMessages re-stamps all messages with the current time',
    class extends MemoryStore {
      override async saveMessages(agentId: string, messages: Message[]): Promise<void> {
        await super.saveMessages(agentId, messages);
        const now = Date.now();
        for (const stored of this.database.agents.get(agentId)?.messages ?? []) stored.savedAt = now;
      }
    },
  ),
  mutant(
    'restamps-rewritten-tail',
    'messages.first-saved-time.insert-in-middle',
    'saveMessages stamps every message past the common prefix with the current time, though it was stored before',
    class extends MemoryStore {
      override async saveMessages(agentId: string, messages: Message[]): Promise<void> {
        const old = (this.database.agents.get(agentId)?.messages ?? []).map((m) => m.json);
        await super.saveMessages(agentId, messages);
        const stored = this.database.agents.get(agentId)?.messages ?? [];
        const prefix = commonPrefixLength(
          old,
          stored.map((m) => m.json),
        );
        const now = Date.now();
        for (const message of stored.slice(prefix)) message.savedAt = now;
      }
    },
  ),
  mutant(
    'pairs-duplicates-backwards',
    'messages.first-saved-time.duplicates-paired-in-order',
    'equal messages of a rewritten tail take the stored times of their text in reverse order',
    class extends MemoryStore {
      override async saveMessages(agentId: string, messages: Message[]): Promise<void> {
        const old = (this.database.agents.get(agentId)?.messages ?? []).map((m) => m.json);
        await super.saveMessages(agentId, messages);
        const stored = this.database.agents.get(agentId)?.messages ?? [];
        const tail = stored.slice(
          commonPrefixLength(
            old,
            stored.map((m) => m.json),
          ),
        );
        for (const json of new Set(tail.map((m) => m.json))) {
          const copies = tail.filter((m) => m.json === json);
          const times = copies.map((m) => m.savedAt).reverse();
          copies.forEach((m, i) => {
            m.savedAt = times[i] as number;
          });
        }
      }
    },
  ),
  mutant(
    'like-style-prefix',
    'list.prefix-literal-x25',
    "list(prefix) treats '%' and '_' as SQL LIKE wildcards",
    class extends MemoryStore {
      override async list(prefix?: string): Promise<string[]> {
        const all = await super.list();
        if (prefix === undefined) return all;
        const pattern = prefix
          .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
          .replaceAll('%', '.*')
          .replaceAll('_', '.');
        return all.filter((id) => new RegExp(`^${pattern}`, 's').test(id));
      }
    },
  ),
  mutant(
    'utf16-sorted-list',
    'list.sorted-by-code-point',
    "list sorts with JavaScript's default (UTF-16) order instead of code point order",
    class extends MemoryStore {
      override async list(prefix?: string): Promise<string[]> {
        return (await super.list(prefix)).sort();
      }
    },
  ),
  mutant(
    'delete-by-prefix',
    'delete.isolation',
    "delete also removes agents whose id starts with the deleted id (a parent's forks)",
    class extends MemoryStore {
      override async delete(agentId: string): Promise<void> {
        for (const id of await this.list(agentId)) await super.delete(id);
        await super.delete(agentId);
      }
    },
  ),
  mutant(
    'exists-needs-info',
    'exists.after-messages',
    'exists is true only once AgentInfo was saved',
    class extends MemoryStore {
      override async exists(agentId: string): Promise<boolean> {
        return (await super.exists(agentId)) && (await this.loadInfo(agentId)) !== undefined;
      }
    },
  ),
  mutant(
    'fork-renames-tool-calls',
    'fork.tool-call-ids-unchanged',
    'batchFork gives the copied tool-call records new ids',
    class extends MemoryStore {
      override async batchFork(agentId: string, count: number): Promise<string[]> {
        const forks = await super.batchFork(agentId, count);
        for (const fork of forks) {
          const records = await this.loadToolCallRecords(fork);
          await this.saveToolCallRecords(
            fork,
            records.map((r, i) => ({ ...r, id: `${r.id}_fork_${i}` })),
          );
        }
        return forks;
      }
    },
  ),
  mutant(
    'fork-unknown-returns-empty',
    'fork.unknown-source',
    'forking an unknown agent returns [] instead of NotFoundError',
    class extends MemoryStore {
      override async batchFork(agentId: string, count: number): Promise<string[]> {
        return (await this.exists(agentId)) ? super.batchFork(agentId, count) : [];
      }
    },
  ),
  mutant(
    'close-does-not-close',
    'close.later-calls-reject',
    'close() does nothing, so later calls still work',
    class extends MemoryStore {
      override async close(): Promise<void> {}
    },
  ),
  mutant(
    'swallows-validation-error',
    'bad-input.messages.function',
    'saveMessages resolves silently when a message cannot be stored',
    class extends MemoryStore {
      override async saveMessages(agentId: string, messages: Message[]): Promise<void> {
        try {
          await super.saveMessages(agentId, messages);
        } catch (error) {
          if ((error as { code?: string }).code !== 'KODE_VALIDATION') throw error;
        }
      }
    },
  ),
  mutant(
    'unknown-sort-by-ignored',
    'query.unknown-sort-by.queryToolCalls',
    'an unknown sortBy falls back to the default instead of a QueryError',
    class extends MemoryStore {
      override queryToolCalls(f: ToolCallFilters) {
        const known = ['created_at', 'updated_at', undefined];
        return super.queryToolCalls(known.includes(f.sortBy) ? f : { ...f, sortBy: undefined });
      }
    },
  ),
  mutant(
    'ties-always-ascending',
    'query.toolcalls.ties-by-id',
    'tool calls with equal times are ordered by id ascending, whatever the sortOrder',
    class extends MemoryStore {
      override async queryToolCalls(f: ToolCallFilters): Promise<ToolCallRecord[]> {
        const all = await super.queryToolCalls({ ...f, limit: 1_000_000, offset: 0 });
        const field = f.sortBy === 'updated_at' ? 'updatedAt' : 'createdAt';
        const sign = f.sortOrder === 'asc' ? 1 : -1;
        const ranked = all.map((r, i) => ({ r, i }));
        // Keep the agent order the store produced, but put equal-time ids of one agent in ascending order.
        ranked.sort(
          (a, b) =>
            sign * (a.r[field] - b.r[field]) || (a.r.id < b.r.id ? -1 : a.r.id > b.r.id ? 1 : a.i - b.i),
        );
        const offset = f.offset ?? 0;
        return ranked.slice(offset, offset + (f.limit ?? 100)).map((x) => x.r);
      }
    },
  ),
  mutant(
    'snapshots-newest-first',
    'snapshots.list-oldest-first',
    'listSnapshots returns the newest snapshot first',
    class extends MemoryStore {
      override async listSnapshots(agentId: string): Promise<Snapshot[]> {
        return (await super.listSnapshots(agentId)).reverse();
      }
    },
  ),
  mutant(
    'stats-count-every-agent',
    'stats.exact-counts',
    "aggregateStats reports the whole store's tool calls as the agent's",
    class extends MemoryStore {
      override async aggregateStats(agentId: string): Promise<AgentStats> {
        const stats = await super.aggregateStats(agentId);
        const metrics = await this.getMetrics();
        return { ...stats, totalToolCalls: metrics.storage.totalToolCalls };
      }
    },
  ),
  mutant(
    'consistency-always-ok',
    'consistency.message-count-mismatch',
    'checkConsistency never finds anything',
    class extends MemoryStore {
      override async checkConsistency(): Promise<ConsistencyCheckResult> {
        return { consistent: true, issues: [], checkedAt: Date.now() };
      }
    },
  ),
  mutant(
    'metrics-miss-loads',
    'metrics.counts-operations',
    'getMetrics does not count loads',
    class extends MemoryStore {
      override async getMetrics(): Promise<StoreMetrics> {
        const metrics = await super.getMetrics();
        return { ...metrics, operations: { ...metrics.operations, loads: 0 } };
      }
    },
  ),
];
