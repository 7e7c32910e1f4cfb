import { readOnlyWriteError } from '../agent/read-only-errors.js';
import { UnsupportedError } from '../errors.js';
import type {
  KvBackend,
  KvInstanceRow,
  KvKeyRef,
  KvMutation,
  KvQueryRow,
  KvRecordRow,
} from './kv-backend.js';
import type { KvQueryPlan } from './kv-query.js';
import { MemoryKvBackend } from './memory-kv.js';

/**
 * The KV backend of a store opened read-only. KV tables are created on first
 * use, so a database whose agents never used the KV API has none, and a
 * read-only store may not create them to find out: it then answers from an
 * empty backend, as if no instance existed. A database that does hold KV data
 * is read through `stored`, itself opened read-only (its schema checked, not
 * migrated). Every write is refused here too, whatever the caller.
 */
export class ReadOnlyKvBackend implements KvBackend {
  readonly name: string;
  private target: KvBackend | undefined;

  /**
   * @param stored the backend's own KV storage, opened read-only.
   * @param holdsKvData whether the database has the KV component installed (read without writing).
   */
  constructor(
    private readonly stored: KvBackend,
    private readonly holdsKvData: () => Promise<boolean>,
  ) {
    this.name = stored.name;
  }

  async open(): Promise<void> {
    const target = (await this.holdsKvData()) ? this.stored : new MemoryKvBackend();
    await target.open();
    this.target = target;
  }

  private reader(): KvBackend {
    if (!this.target) throw new UnsupportedError('the KV backend is not open', { backend: this.name });
    return this.target;
  }

  private refuse(operation: string): never {
    throw readOnlyWriteError({ backend: this.name, operation: `kv.${operation}` });
  }

  getInstance(id: string): Promise<KvInstanceRow | undefined> {
    return this.reader().getInstance(id);
  }

  listInstances(): Promise<KvInstanceRow[]> {
    return this.reader().listInstances();
  }

  getRecords(
    instanceId: string,
    refs: KvKeyRef[],
    now: number,
  ): Promise<Array<KvRecordRow | undefined> | undefined> {
    return this.reader().getRecords(instanceId, refs, now);
  }

  namespaces(instanceId: string, now: number): Promise<string[] | undefined> {
    return this.reader().namespaces(instanceId, now);
  }

  countRecords(instanceId: string, namespace: string | undefined, now: number): Promise<number | undefined> {
    return this.reader().countRecords(instanceId, namespace, now);
  }

  query(plan: KvQueryPlan, now: number): Promise<{ rows: KvQueryRow[]; total: number } | undefined> {
    return this.reader().query(plan, now);
  }

  async insertInstance(_row: KvInstanceRow): Promise<boolean> {
    this.refuse('createInstance');
  }

  async updateInstance(_id: string, _changes: { name?: string; description?: string }, _now: number) {
    return this.refuse('updateInstance');
  }

  async deleteInstance(_id: string): Promise<boolean> {
    this.refuse('deleteInstance');
  }

  async mutate(
    _instanceId: string,
    _refs: KvKeyRef[],
    _options: { createInstance?: KvInstanceRow },
    _mutation: KvMutation,
  ): Promise<boolean> {
    this.refuse('mutate');
  }

  async deleteNamespace(_instanceId: string, _namespace: string, _now: number): Promise<number | undefined> {
    this.refuse('deleteNamespace');
  }

  async sweepExpired(_now: number): Promise<number> {
    this.refuse('sweepExpired');
  }
}
