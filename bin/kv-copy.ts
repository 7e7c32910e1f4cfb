import type { ExportItem, ExportRecord } from '../src/export-format.js';
import { CliError, ExitCode } from './cli-io.js';
import type { OpenedLocation } from './open-location.js';

/** What happened to the KV data in a migration. */
export interface KvCopyResult {
  /** False when either side has no KV API (a json: source has none). */
  copied: boolean;
  instances: number;
  records: number;
  /** Empty when the destination's KV data matches the source's. */
  differences: string[];
  /** One line for humans. */
  summary: string;
}

function kvOf(location: OpenedLocation): unknown {
  return location.kind === 'store' ? (location.store as { kv?: unknown }).kv : undefined;
}

/**
 * Copies all KV data (instances, then every record of every namespace).
 * HOOK: the KV layer (src/kv, `store.kv`) has not landed yet; until it does
 * this reports that nothing was copied rather than pretending.
 */
export async function copyKvData(source: OpenedLocation, destination: OpenedLocation): Promise<KvCopyResult> {
  if (source.kind === 'json') {
    return {
      copied: false,
      instances: 0,
      records: 0,
      differences: [],
      summary: 'KV: a json: source has no KV data',
    };
  }
  if (kvOf(source) === undefined || kvOf(destination) === undefined) {
    return {
      copied: false,
      instances: 0,
      records: 0,
      differences: [],
      summary: 'KV: not copied (this build has no KV API on these stores)',
    };
  }
  return {
    copied: false,
    instances: 0,
    records: 0,
    differences: ['the KV copy is not implemented for this KV API yet'],
    summary: 'KV: not copied (KV copy not implemented yet)',
  };
}

/**
 * The KV lines of an export (`kvInstance`, then `kvRecord`s).
 * HOOK: yields nothing until the KV layer lands.
 */
export function kvExportRecords(_source: OpenedLocation): AsyncIterable<ExportRecord> {
  return { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };
}

/**
 * Writes the KV lines of an import into the destination.
 * HOOK: refuses KV lines until the KV layer lands (never drops them silently).
 */
export async function importKvItem(destination: OpenedLocation, item: KvExportItem): Promise<void> {
  throw new CliError(
    `the export holds KV data (${item.kind}) but ${destination.label} has no KV API in this build`,
    ExitCode.usage,
  );
}

/** A KV item read from an export. */
export type KvExportItem = Extract<ExportItem, { kind: 'kvInstance' | 'kvRecord' }>;
