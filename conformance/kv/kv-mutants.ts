import type {
  KvBackend,
  KvInstanceRow,
  KvKeyRef,
  KvMutation,
  KvQueryRow,
  KvRecordRow,
} from '../../src/kv/kv-backend.js';
import type { KvPredicate, KvQueryPlan, KvRecordView } from '../../src/kv/kv-query.js';
import {
  compareSortPositions,
  evaluatePlan,
  matchesPredicate,
  sortPosition,
  vectorDirections,
} from '../../src/kv/kv-query-eval.js';
import { viewOfRow } from '../../src/kv/kv-records.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import type { KvStore } from '../../src/kv/kv-types.js';
import { MemoryKvBackend } from '../../src/kv/memory-kv.js';
import type { KvHarness } from './kv-harness.js';

/**
 * Deliberately broken copies of the reference (the memory backend behind
 * `createKvStore`), each with one bug a real backend could have. The suite
 * must fail every one of them: its own test that it can catch bugs.
 */
export interface KvMutant {
  name: string;
  /** The bug, in words. */
  bug: string;
  backend?: (inner: KvBackend) => KvBackend;
  store?: (kv: KvStore) => KvStore;
}

/** A backend that forwards everything; mutants override one method. */
class ForwardingBackend implements KvBackend {
  readonly name: string;
  constructor(protected readonly inner: KvBackend) {
    this.name = inner.name;
  }
  open() {
    return this.inner.open();
  }
  insertInstance(row: KvInstanceRow) {
    return this.inner.insertInstance(row);
  }
  getInstance(id: string) {
    return this.inner.getInstance(id);
  }
  listInstances() {
    return this.inner.listInstances();
  }
  updateInstance(id: string, changes: { name?: string; description?: string }, now: number) {
    return this.inner.updateInstance(id, changes, now);
  }
  deleteInstance(id: string) {
    return this.inner.deleteInstance(id);
  }
  getRecords(instanceId: string, refs: KvKeyRef[], now: number) {
    return this.inner.getRecords(instanceId, refs, now);
  }
  mutate(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ) {
    return this.inner.mutate(instanceId, refs, options, mutation);
  }
  deleteNamespace(instanceId: string, namespace: string, now: number) {
    return this.inner.deleteNamespace(instanceId, namespace, now);
  }
  namespaces(instanceId: string, now: number) {
    return this.inner.namespaces(instanceId, now);
  }
  countRecords(instanceId: string, namespace: string | undefined, now: number) {
    return this.inner.countRecords(instanceId, namespace, now);
  }
  query(plan: KvQueryPlan, now: number) {
    return this.inner.query(plan, now);
  }
  sweepExpired(now: number) {
    return this.inner.sweepExpired(now);
  }
}

/** Overrides one method of a forwarding backend. */
function override(patch: (inner: KvBackend) => Partial<KvBackend>): (inner: KvBackend) => KvBackend {
  return (inner) => Object.assign(new ForwardingBackend(inner), patch(inner));
}

/** Rewrites every put row of a mutation's plan. */
function rewritePuts(
  change: (row: KvRecordRow, current: KvRecordRow | undefined) => KvRecordRow,
): (inner: KvBackend) => KvBackend {
  return override((inner) => ({
    mutate: (instanceId, refs, options, mutation) =>
      inner.mutate(instanceId, refs, options, (current) => {
        const plan = mutation(current);
        const byKey = new Map(
          current.flatMap((row) => (row ? [[`${row.namespace}\u0000${row.key}`, row]] : [])),
        );
        return {
          ...plan,
          put: plan.put.map((row) => change(row, byKey.get(`${row.namespace}\u0000${row.key}`))),
        };
      }),
  }));
}

function rewritePredicate(predicate: KvPredicate, change: (leaf: KvPredicate) => KvPredicate): KvPredicate {
  if (predicate.kind === 'and' || predicate.kind === 'or') {
    return { ...predicate, items: predicate.items.map((item) => rewritePredicate(item, change)) };
  }
  return change(predicate);
}

/** Every match of a plan in scope, without paging (the page is then cut by the mutant). */
async function everyMatch(inner: KvBackend, plan: KvQueryPlan, now: number) {
  return inner.query({ ...plan, offset: 0, limit: undefined, needsValue: true, needsMetadata: true }, now);
}

/** A text comparison where a number comparison belongs ("10" < "9"). */
function matchesAsText(view: KvRecordView, predicate: KvPredicate): boolean {
  if (predicate.kind === 'and') return predicate.items.every((item) => matchesAsText(view, item));
  if (predicate.kind === 'or') return predicate.items.some((item) => matchesAsText(view, item));
  if (
    predicate.kind !== 'compare' ||
    typeof predicate.operand !== 'number' ||
    !['gt', 'gte', 'lt', 'lte'].includes(predicate.operator)
  ) {
    return matchesPredicate(view, predicate);
  }
  const field = predicate.field;
  const actual =
    field.kind === 'column'
      ? view[field.column]
      : field.path.reduce<unknown>(
          (current, segment) =>
            current && typeof current === 'object'
              ? (current as Record<string, unknown>)[segment]
              : undefined,
          field.document === 'value' ? view.value : view.metadata,
        );
  if (typeof actual !== 'number') return false;
  const [a, b] = [String(actual), String(predicate.operand)];
  return { gt: a > b, gte: a >= b, lt: a < b, lte: a <= b }[predicate.operator as 'gt'];
}

const TRUE: KvPredicate = { kind: 'and', items: [] };

/** The mutants `test/kv/kv-mutants.test.ts` runs the suite against; each must fail at least one case. */
export const kvMutants: KvMutant[] = [
  {
    name: 'ignores-offset',
    bug: 'query ignores offset',
    backend: override((inner) => ({ query: (plan, now) => inner.query({ ...plan, offset: 0 }, now) })),
  },
  {
    name: 'total-counts-the-page',
    bug: 'query total counts the returned page instead of every match',
    backend: override((inner) => ({
      query: async (plan, now) => {
        const page = await inner.query(plan, now);
        return page && { ...page, total: page.rows.length };
      },
    })),
  },
  {
    name: 'neq-matches-missing',
    bug: 'neq also matches records without the field (SQL NOT semantics done wrong)',
    backend: override((inner) => ({
      query: (plan, now) =>
        inner.query(
          {
            ...plan,
            where: rewritePredicate(plan.where, (leaf) =>
              leaf.kind === 'compare' && leaf.operator === 'neq'
                ? { kind: 'or', items: [leaf, { kind: 'exists', field: leaf.field, exists: false }] }
                : leaf,
            ),
          },
          now,
        ),
    })),
  },
  {
    name: 'numbers-compared-as-text',
    bug: 'gt/gte/lt/lte compare numbers as text, so 10 < 9',
    backend: override((inner) => ({
      query: async (plan, now) => {
        const all = await everyMatch(inner, { ...plan, where: TRUE, after: undefined }, now);
        if (!all) return undefined;
        const views = all.rows
          .map((row) => ({ ...viewOfRow(row), row }))
          .filter((view) => matchesAsText(view, plan.where));
        const result = evaluatePlan(views, { ...plan, where: TRUE });
        return { rows: result.records.map((view) => view.row), total: result.total };
      },
    })),
  },
  {
    name: 'expired-visible-to-get',
    bug: 'get returns records whose TTL has passed',
    backend: override((inner) => ({
      getRecords: (instanceId, refs) => inner.getRecords(instanceId, refs, Number.NEGATIVE_INFINITY),
    })),
  },
  {
    name: 'expired-counted',
    bug: 'getRecordCount counts records whose TTL has passed',
    backend: override((inner) => ({
      countRecords: (instanceId, namespace) =>
        inner.countRecords(instanceId, namespace, Number.NEGATIVE_INFINITY),
    })),
  },
  {
    name: 'lost-update',
    bug: 'read-modify-write is not atomic: the plan is decided on a read taken before another writer commits',
    backend: override((inner) => ({
      mutate: async (instanceId, refs, options, mutation) => {
        let snapshot: ReadonlyArray<KvRecordRow | undefined> = [];
        await inner.mutate(instanceId, refs, options, (current) => {
          snapshot = current;
          return { put: [], remove: [] };
        });
        await new Promise((resolve) => setImmediate(resolve));
        return inner.mutate(instanceId, refs, options, () => mutation(snapshot));
      },
    })),
  },
  {
    name: 'namespaces-in-utf16-order',
    bug: 'getNamespaces sorts by UTF-16 code unit (JavaScript default sort), not code point',
    backend: override((inner) => ({
      namespaces: async (instanceId, now) => (await inner.namespaces(instanceId, now))?.sort(),
    })),
  },
  {
    name: 'leaks-across-instances',
    bug: 'get falls back to the same namespace and key in another instance (a key built by concatenation)',
    backend: override((inner) => ({
      getRecords: async (instanceId, refs, now) => {
        const rows = await inner.getRecords(instanceId, refs, now);
        if (!rows) return rows;
        const others = (await inner.listInstances()).filter((i) => i.id !== instanceId);
        return Promise.all(
          rows.map(async (row, i) => {
            if (row) return row;
            for (const other of others) {
              const found = (await inner.getRecords(other.id, [refs[i] as KvKeyRef], now))?.[0];
              if (found) return found;
            }
            return undefined;
          }),
        );
      },
    })),
  },
  {
    name: 'version-not-bumped',
    bug: 'overwriting a key leaves its version at 1',
    backend: rewritePuts((row) => ({ ...row, version: 1 })),
  },
  {
    name: 'created-at-reset',
    bug: 'overwriting a key resets createdAt',
    backend: rewritePuts((row) => ({ ...row, createdAt: row.updatedAt })),
  },
  {
    name: 'metadata-replaced',
    bug: 'metadata given to set replaces the stored metadata instead of merging into it',
    backend: rewritePuts((row, current) => {
      if (!current || row.metadata === current.metadata) return row;
      const before = JSON.parse(current.metadata) as Record<string, unknown>;
      const after = JSON.parse(row.metadata) as Record<string, unknown>;
      const patch = Object.fromEntries(
        Object.entries(after).filter(([k, v]) => JSON.stringify(before[k]) !== JSON.stringify(v)),
      );
      return { ...row, metadata: JSON.stringify(patch) };
    }),
  },
  {
    name: 'ignores-if-version',
    bug: 'set ignores ifVersion (last write wins)',
    store: (kv) =>
      Object.assign(Object.create(kv) as KvStore, {
        set: (...args: Parameters<KvStore['set']>) => {
          const [instanceId, namespace, key, value, options] = args;
          return kv.set(instanceId, namespace, key, value, { ...options, ifVersion: undefined });
        },
      }),
  },
  {
    name: 'ties-not-broken-by-key',
    bug: 'records equal under orderBy come in reverse key order',
    backend: override((inner) => ({
      query: async (plan, now) => {
        const all = await everyMatch(inner, plan, now);
        if (!all) return undefined;
        const directions = vectorDirections(plan.orderBy);
        const positioned = all.rows
          .reverse()
          .map((row) => ({ row, position: sortPosition(viewOfRow(row), plan.orderBy) }));
        // Stable sort on the sort keys alone: ties keep the reversed order.
        positioned.sort((a, b) =>
          compareSortPositions(
            { ...a.position, key: '', namespace: '' },
            { ...b.position, key: '', namespace: '' },
            directions,
          ),
        );
        const end = plan.limit === undefined ? undefined : plan.offset + plan.limit;
        return {
          rows: positioned.slice(plan.offset, end).map((entry) => entry.row as KvQueryRow),
          total: all.total,
        };
      },
    })),
  },
  {
    name: 'delete-namespace-reports-zero',
    bug: 'deleteNamespace deletes but always reports 0',
    backend: override((inner) => ({
      deleteNamespace: async (instanceId, namespace, now) => {
        const deleted = await inner.deleteNamespace(instanceId, namespace, now);
        return deleted === undefined ? undefined : 0;
      },
    })),
  },
];

/** A harness for a mutant: the memory reference with the mutant's bug, peers sharing its backend. */
export function kvMutantHarness(mutant: KvMutant): KvHarness {
  const backends = new WeakMap<KvStore, KvBackend>();
  const build = (backend: KvBackend, now: () => number) => {
    const kv = createKvStore(backend, { now });
    const mutated = mutant.store ? mutant.store(kv) : kv;
    backends.set(mutated, backend);
    return mutated;
  };
  return {
    name: `mutant ${mutant.name}`,
    create: async ({ now }) => {
      const memory = new MemoryKvBackend();
      return build(mutant.backend ? mutant.backend(memory) : memory, now);
    },
    destroy: async () => {},
    createPeer: async (kv, { now }) => build(backends.get(kv) as KvBackend, now),
  };
}
