import type { KvInstance, KvRecord } from '../src/kv/kv-types.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue } from './cli-io.js';
import { kvOf } from './kv-copy.js';
import type { OpenedLocation } from './open-location.js';
import { type Column, type Page, pageOf, preview, printPage } from './output.js';

interface InstanceRow extends KvInstance {
  records: number;
}

interface NamespaceRow {
  namespace: string;
  records: number;
}

const INSTANCE_COLUMNS: Column<InstanceRow>[] = [
  { header: 'instance', cell: (i) => i.id },
  { header: 'name', cell: (i) => i.name },
  { header: 'description', cell: (i) => preview(i.description, 40) },
  { header: 'records', cell: (i) => i.records, align: 'right' },
  { header: 'updated', cell: (i) => i.updatedAt },
];

const NAMESPACE_COLUMNS: Column<NamespaceRow>[] = [
  { header: 'namespace', cell: (n) => n.namespace },
  { header: 'records', cell: (n) => n.records, align: 'right' },
];

const RECORD_COLUMNS: Column<KvRecord>[] = [
  { header: 'key', cell: (r) => r.key },
  { header: 'version', cell: (r) => r.version, align: 'right' },
  { header: 'updated', cell: (r) => r.updatedAt },
  { header: 'by', cell: (r) => r.updatedBy },
  { header: 'expires', cell: (r) => r.expiresAt },
  { header: 'value', cell: (r) => preview(r.value, 50) },
  { header: 'metadata', cell: (r) => (Object.keys(r.metadata ?? {}).length ? preview(r.metadata, 30) : '') },
];

/**
 * `inspect <location> kv [instance [namespace]]`: the instances with their
 * record counts; an instance's namespaces; a namespace's records (paged in
 * the database by the query API, never all loaded).
 */
export async function inspectKv(
  io: CliIo,
  opened: OpenedLocation,
  args: string[],
  options: { limit: number; offset: number; json?: boolean },
): Promise<ExitCodeValue> {
  if (opened.kind === 'json') throw new CliError('a json: location has no KV data', ExitCode.usage);
  const kv = kvOf(opened);
  if (!kv) throw new CliError(`${opened.label} has no KV API`, ExitCode.usage);
  const [instanceId, namespace] = args;
  const json = options.json === true;
  if (instanceId === undefined) {
    const rows: InstanceRow[] = [];
    for (const instance of await kv.listInstances()) {
      rows.push({ ...instance, records: await kv.getRecordCount(instance.id) });
    }
    await printPage(io, pageOf(rows, options), 'KV instances', INSTANCE_COLUMNS, json);
    return ExitCode.ok;
  }
  if (!(await kv.getInstance(instanceId))) {
    throw new CliError(
      `KV instance ${JSON.stringify(instanceId)} not found in ${opened.label}`,
      ExitCode.problemsFound,
    );
  }
  if (namespace === undefined) {
    const rows: NamespaceRow[] = [];
    for (const name of await kv.getNamespaces(instanceId)) {
      rows.push({ namespace: name, records: await kv.getRecordCount(instanceId, name) });
    }
    await printPage(io, pageOf(rows, options), 'namespaces', NAMESPACE_COLUMNS, json);
    return ExitCode.ok;
  }
  const result = await kv.query({
    from: { instance: instanceId, namespace },
    orderBy: { field: 'key' },
    offset: options.offset,
    ...(options.limit === 0 ? {} : { limit: options.limit }),
  });
  const records = result.records as KvRecord[];
  const page: Page<KvRecord> = {
    items: records,
    offset: options.offset,
    limit: options.limit,
    total: result.total,
    more: options.offset + records.length < result.total,
  };
  await printPage(io, page, 'records', RECORD_COLUMNS, json);
  return ExitCode.ok;
}
