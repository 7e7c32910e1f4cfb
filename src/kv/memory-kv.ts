import { compareCodePoints, sortCodePoints } from '../strings.js';
import {
  isLive,
  type KvBackend,
  type KvInstanceRow,
  type KvKeyRef,
  type KvMutation,
  type KvQueryRow,
  type KvRecordRow,
} from './kv-backend.js';
import type { KvQueryPlan, KvRecordView } from './kv-query.js';
import { evaluatePlan } from './kv-query-eval.js';
import { viewOfRow } from './kv-records.js';

type Namespace = Map<string, KvRecordRow>;

interface InstanceState {
  row: KvInstanceRow;
  namespaces: Map<string, Namespace>;
}

/**
 * The reference KV backend: plain maps in this process, queries answered by
 * the plain evaluator. It is what the conformance suite holds every other
 * backend to. Every method runs synchronously inside one call, so `mutate`
 * is atomic without locks; two `createKvStore` over one `MemoryKvBackend`
 * behave as two store instances on one database.
 *
 * ```ts
 * const kv = createKvStore(new MemoryKvBackend());
 * ```
 */
export class MemoryKvBackend implements KvBackend {
  readonly name: string = 'memory';
  private readonly instances = new Map<string, InstanceState>();

  async open(): Promise<void> {}

  async insertInstance(row: KvInstanceRow): Promise<boolean> {
    if (this.instances.has(row.id)) return false;
    this.instances.set(row.id, { row: { ...row }, namespaces: new Map() });
    return true;
  }

  async getInstance(id: string): Promise<KvInstanceRow | undefined> {
    const state = this.instances.get(id);
    return state && { ...state.row };
  }

  async listInstances(): Promise<KvInstanceRow[]> {
    return [...this.instances.values()]
      .map((state) => ({ ...state.row }))
      .sort((a, b) => a.createdAt - b.createdAt || compareCodePoints(a.id, b.id));
  }

  async updateInstance(
    id: string,
    changes: { name?: string; description?: string },
    now: number,
  ): Promise<KvInstanceRow | undefined> {
    const state = this.instances.get(id);
    if (!state) return undefined;
    state.row = { ...state.row, ...changes, updatedAt: Math.max(now, state.row.updatedAt + 1) };
    return { ...state.row };
  }

  async deleteInstance(id: string): Promise<boolean> {
    return this.instances.delete(id);
  }

  async getRecords(
    instanceId: string,
    refs: KvKeyRef[],
    now: number,
  ): Promise<Array<KvRecordRow | undefined> | undefined> {
    const state = this.instances.get(instanceId);
    if (!state) return undefined;
    return refs.map((ref) => {
      const row = state.namespaces.get(ref.namespace)?.get(ref.key);
      return row && isLive(row, now) ? { ...row } : undefined;
    });
  }

  async mutate(
    instanceId: string,
    refs: KvKeyRef[],
    options: { createInstance?: KvInstanceRow },
    mutation: KvMutation,
  ): Promise<boolean> {
    let state = this.instances.get(instanceId);
    if (!state && options.createInstance) {
      state = { row: { ...options.createInstance }, namespaces: new Map() };
    }
    if (!state) return false;
    const current = refs.map((ref) => {
      const row = state.namespaces.get(ref.namespace)?.get(ref.key);
      return row && { ...row };
    });
    // The plan is decided before anything changes: if it throws, nothing was written.
    const plan = mutation(current);
    this.instances.set(instanceId, state);
    for (const ref of plan.remove) {
      const namespace = state.namespaces.get(ref.namespace);
      namespace?.delete(ref.key);
      if (namespace?.size === 0) state.namespaces.delete(ref.namespace);
    }
    for (const row of plan.put) {
      let namespace = state.namespaces.get(row.namespace);
      if (!namespace) {
        namespace = new Map();
        state.namespaces.set(row.namespace, namespace);
      }
      namespace.set(row.key, { ...row });
    }
    return true;
  }

  async deleteNamespace(instanceId: string, namespace: string, now: number): Promise<number | undefined> {
    const state = this.instances.get(instanceId);
    if (!state) return undefined;
    const rows = state.namespaces.get(namespace);
    state.namespaces.delete(namespace);
    let live = 0;
    for (const row of rows?.values() ?? []) if (isLive(row, now)) live++;
    return live;
  }

  async namespaces(instanceId: string, now: number): Promise<string[] | undefined> {
    const state = this.instances.get(instanceId);
    if (!state) return undefined;
    const names: string[] = [];
    for (const [name, rows] of state.namespaces) {
      for (const row of rows.values()) {
        if (isLive(row, now)) {
          names.push(name);
          break;
        }
      }
    }
    return sortCodePoints(names);
  }

  async countRecords(
    instanceId: string,
    namespace: string | undefined,
    now: number,
  ): Promise<number | undefined> {
    const state = this.instances.get(instanceId);
    if (!state) return undefined;
    let count = 0;
    for (const row of this.rowsOf(state, namespace)) if (isLive(row, now)) count++;
    return count;
  }

  async query(plan: KvQueryPlan, now: number): Promise<{ rows: KvQueryRow[]; total: number } | undefined> {
    const state = this.instances.get(plan.instanceId);
    if (!state) return undefined;
    const views: Array<KvRecordView & { row: KvRecordRow }> = [];
    for (const row of this.rowsOf(state, plan.namespace)) {
      if (isLive(row, now)) views.push({ ...viewOfRow(row), row });
    }
    const result = evaluatePlan(views, plan);
    return { rows: result.records.map((view) => ({ ...view.row })), total: result.total };
  }

  async sweepExpired(now: number): Promise<number> {
    let removed = 0;
    for (const state of this.instances.values()) {
      for (const [name, rows] of state.namespaces) {
        for (const [key, row] of rows) {
          if (!isLive(row, now)) {
            rows.delete(key);
            removed++;
          }
        }
        if (rows.size === 0) state.namespaces.delete(name);
      }
    }
    return removed;
  }

  private *rowsOf(state: InstanceState, namespace: string | undefined): Iterable<KvRecordRow> {
    if (namespace !== undefined) {
      yield* state.namespaces.get(namespace)?.values() ?? [];
      return;
    }
    for (const rows of state.namespaces.values()) yield* rows.values();
  }
}
