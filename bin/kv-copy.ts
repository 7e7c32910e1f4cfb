import type { KvInstance, KvRecord, KvStore } from '../src/kv/kv-types.js';
import type { ExportItem, ExportRecord, KvExportValue } from '../src/transfer/export-format.js';
import { CliError, ExitCode } from './cli-io.js';
import type { OpenedLocation } from './open-location.js';

/** Records read and written per round trip. */
const KV_PAGE = 500;

/**
 * An exact restore, for a KV API that offers it: instances and records
 * written with their ids, versions, timestamps and actors as given. Without
 * it, copies go through the public API (`createInstance`, `setMany`, `set`),
 * which carries instance ids, names, descriptions, namespaces, keys, values,
 * metadata, expiry and the last actor, but re-stamps record ids, versions and
 * timestamps (the KV API owns those).
 */
export interface KvRestoreApi {
  restoreInstance(instance: KvInstance): Promise<void>;
  restoreRecords(records: KvRecord[]): Promise<void>;
}

type KvApi = KvStore & Partial<KvRestoreApi>;

/** What happened to the KV data in a migration. */
export interface KvCopyResult {
  /** False when either side has no KV API (a json: source has none). */
  copied: boolean;
  instances: number;
  records: number;
  /** Records already equal in the destination, left untouched. */
  unchanged: number;
  /** `exact` through a restore API, `public-api` otherwise (record versions and timestamps re-stamped). */
  mode?: 'exact' | 'public-api';
  /** Empty when the destination's KV data matches the source's. */
  differences: string[];
  /** One line for humans. */
  summary: string;
}

/** The KV API of an opened location, if it has one. */
export function kvOf(location: OpenedLocation): KvApi | undefined {
  if (location.kind !== 'store') return undefined;
  const kv = (location.store as { kv?: unknown }).kv;
  return typeof kv === 'object' && kv !== null && typeof (kv as KvStore).query === 'function'
    ? (kv as KvApi)
    : undefined;
}

/** Every live record of an instance, namespace by namespace, key by key, a page at a time. */
export async function* kvRecordsOf(kv: KvStore, instanceId: string): AsyncGenerator<KvRecord> {
  let cursor: string | undefined;
  do {
    const page = await kv.query({
      from: { instance: instanceId },
      orderBy: [{ field: 'namespace' }, { field: 'key' }],
      limit: KV_PAGE,
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const record of page.records) yield record as KvRecord;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}

/** The parts of a record the public API carries, as text: equal text means an equal copy. */
function portable(record: Pick<KvRecord, 'value' | 'metadata' | 'expiresAt'>): string {
  return JSON.stringify([record.value, record.metadata ?? {}, record.expiresAt ?? null]);
}

/** Creates the instance, or brings its name and description in line. */
export async function ensureKvInstance(kv: KvApi, instance: KvInstance): Promise<void> {
  if (kv.restoreInstance) {
    await kv.restoreInstance(instance);
    return;
  }
  const existing = await kv.getInstance(instance.id);
  if (!existing) {
    await kv.createInstance({ id: instance.id, name: instance.name, description: instance.description });
  } else if (existing.name !== instance.name || existing.description !== instance.description) {
    await kv.updateInstance(instance.id, { name: instance.name, description: instance.description });
  }
}

/**
 * Writes records of one instance so that re-running leaves one copy: a key
 * whose value, metadata and expiry already match is left alone (its version
 * does not move); a key that differs is deleted first, because `set` merges
 * metadata and a stale key would survive the merge.
 */
export async function writeKvRecords(
  kv: KvApi,
  instanceId: string,
  records: KvRecord[],
): Promise<{ written: number; unchanged: number }> {
  if (kv.restoreRecords) {
    await kv.restoreRecords(records);
    return { written: records.length, unchanged: 0 };
  }
  let written = 0;
  let unchanged = 0;
  const byNamespace = new Map<string, KvRecord[]>();
  for (const record of records)
    byNamespace.set(record.namespace, [...(byNamespace.get(record.namespace) ?? []), record]);
  for (const [namespace, group] of byNamespace) {
    const existing = new Map(
      (
        await kv.getMany(
          instanceId,
          namespace,
          group.map((r) => r.key),
        )
      ).map((r) => [r.key, r] as const),
    );
    const plain = new Map<string, KvRecord[]>();
    for (const record of group) {
      const current = existing.get(record.key);
      if (current && portable(current) === portable(record)) {
        unchanged++;
        continue;
      }
      if (current) await kv.delete(instanceId, namespace, record.key);
      written++;
      const actor = record.updatedBy ?? record.createdBy;
      if (record.expiresAt !== undefined) {
        await kv.set(instanceId, namespace, record.key, record.value, {
          metadata: record.metadata,
          expiresAt: record.expiresAt,
          ...(actor === undefined ? {} : { actor }),
        });
      } else {
        // One setMany (one transaction) per actor: setMany takes a single actor.
        const key = actor ?? '\u0000';
        plain.set(key, [...(plain.get(key) ?? []), record]);
      }
    }
    for (const [actor, batch] of plain) {
      await kv.setMany(
        instanceId,
        batch.map((r) => ({ namespace, key: r.key, value: r.value, metadata: r.metadata })),
        actor === '\u0000' ? {} : { actor },
      );
    }
  }
  return { written, unchanged };
}

/** Differences between the KV data of two stores (source records missing or different in the destination). */
export async function compareKv(source: KvStore, destination: KvStore): Promise<string[]> {
  const differences: string[] = [];
  for (const instance of await source.listInstances()) {
    const other = await destination.getInstance(instance.id);
    if (!other) {
      differences.push(`KV instance ${JSON.stringify(instance.id)} is missing`);
      continue;
    }
    if (other.name !== instance.name || other.description !== instance.description) {
      differences.push(`KV instance ${JSON.stringify(instance.id)}: name or description differs`);
    }
    let count = 0;
    let batch: KvRecord[] = [];
    const check = async () => {
      const namespaces = new Set(batch.map((r) => r.namespace));
      for (const namespace of namespaces) {
        const mine = batch.filter((r) => r.namespace === namespace);
        const theirs = new Map(
          (
            await destination.getMany(
              instance.id,
              namespace,
              mine.map((r) => r.key),
            )
          ).map((r) => [r.key, r] as const),
        );
        for (const record of mine) {
          const copy = theirs.get(record.key);
          if (!copy || portable(copy) !== portable(record)) {
            differences.push(`KV ${instance.id}/${namespace}/${record.key}: ${copy ? 'differs' : 'missing'}`);
          }
        }
      }
      batch = [];
    };
    for await (const record of kvRecordsOf(source, instance.id)) {
      count++;
      batch.push(record);
      if (batch.length >= KV_PAGE) await check();
    }
    await check();
    const copies = await destination.getRecordCount(instance.id);
    if (copies !== count)
      differences.push(
        `KV instance ${JSON.stringify(instance.id)}: source ${count} records, destination ${copies}`,
      );
  }
  return differences;
}

/** Copies all KV data (each instance, then its records a page at a time) and checks the copy. */
export async function copyKvData(source: OpenedLocation, destination: OpenedLocation): Promise<KvCopyResult> {
  const none = { copied: false, instances: 0, records: 0, unchanged: 0, differences: [] };
  if (source.kind === 'json') return { ...none, summary: 'KV: a json: source has no KV data' };
  const from = kvOf(source);
  const to = kvOf(destination);
  if (!from) return { ...none, summary: `KV: ${source.label} has no KV API; nothing to copy` };
  if (!to) {
    const instances = (await from.listInstances()).length;
    return {
      ...none,
      differences:
        instances > 0 ? [`${destination.label} has no KV API; ${instances} KV instance(s) not copied`] : [],
      summary: `KV: ${destination.label} has no KV API`,
    };
  }
  let instances = 0;
  let records = 0;
  let unchanged = 0;
  for (const instance of await from.listInstances()) {
    await ensureKvInstance(to, instance);
    instances++;
    let page: KvRecord[] = [];
    const flush = async () => {
      const result = await writeKvRecords(to, instance.id, page);
      records += result.written;
      unchanged += result.unchanged;
      page = [];
    };
    for await (const record of kvRecordsOf(from, instance.id)) {
      page.push(record);
      if (page.length >= KV_PAGE) await flush();
    }
    await flush();
  }
  const differences = await compareKv(from, to);
  const mode = to.restoreRecords ? 'exact' : 'public-api';
  return {
    copied: true,
    instances,
    records,
    unchanged,
    mode,
    differences,
    summary:
      `KV: ${instances} instance(s), ${records} record(s) written, ${unchanged} already equal` +
      (mode === 'public-api' ? ' (record versions and timestamps re-stamped by the destination)' : ''),
  };
}

/** The KV lines of an export: each instance, then its records. Nothing when the source has no KV API. */
export async function* kvExportRecords(source: OpenedLocation): AsyncGenerator<ExportRecord> {
  const kv = kvOf(source);
  if (!kv) return;
  for (const instance of await kv.listInstances()) {
    yield { type: 'kvInstance', value: instance as unknown as KvExportValue };
    for await (const record of kvRecordsOf(kv, instance.id)) {
      yield { type: 'kvRecord', value: record as unknown as KvExportValue };
    }
  }
}

/** A KV item read from an export. */
export type KvExportItem = Extract<ExportItem, { kind: 'kvInstance' | 'kvRecord' }>;

/**
 * Writes the KV lines of an import, records in pages. Refuses (never drops)
 * KV lines when the destination has no KV API, and records of an instance
 * whose `kvInstance` line did not come first.
 */
export class KvImporter {
  private readonly kv: KvApi | undefined;
  private readonly instances = new Set<string>();
  private pending: KvRecord[] = [];
  written = 0;
  unchanged = 0;

  constructor(private readonly destination: OpenedLocation) {
    this.kv = kvOf(destination);
  }

  /** True when records are written through the public API, which gives them new ids, versions and timestamps. */
  get restamps(): boolean {
    return this.kv !== undefined && !this.kv.restoreRecords;
  }

  async add(item: KvExportItem): Promise<void> {
    if (!this.kv) {
      throw new CliError(
        `the export holds KV data but ${this.destination.label} has no KV API`,
        ExitCode.usage,
      );
    }
    if (item.kind === 'kvInstance') {
      await this.flush();
      const instance = item.value as unknown as KvInstance;
      await ensureKvInstance(this.kv, instance);
      this.instances.add(instance.id);
      return;
    }
    const record = item.value as unknown as KvRecord;
    if (!this.instances.has(record.instanceId)) {
      throw new CliError(
        `KV record of instance ${JSON.stringify(record.instanceId)} before its kvInstance line`,
        ExitCode.problemsFound,
      );
    }
    if (this.pending.length > 0 && this.pending[0]!.instanceId !== record.instanceId) await this.flush();
    this.pending.push(record);
    if (this.pending.length >= KV_PAGE) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.kv || this.pending.length === 0) return;
    const result = await writeKvRecords(this.kv, this.pending[0]!.instanceId, this.pending);
    this.written += result.written;
    this.unchanged += result.unchanged;
    this.pending = [];
  }
}
