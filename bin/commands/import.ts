import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { Command } from 'commander';
import { type AgentCounts, ExportFormatError, readExport } from '../../src/transfer/export-format.js';
import { type CopyOutcome, copyAgent, countAgent, diffCounts } from '../agent-copy.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, openWritable, reportError, withLocation, withStandardHelp } from '../command-support.js';
import { KvImporter } from '../kv-copy.js';
import { locationLabel, type OpenedStoreLocation } from '../open-location.js';
import { type Column, printJson, renderTable } from '../output.js';

/** Options of `kode-store import`. */
export interface ImportOptions {
  /** A file to read instead of stdin. */
  input?: string;
  json?: boolean;
}

interface ImportedAgent {
  agentId: string;
  outcome: CopyOutcome;
  counts: AgentCounts;
  differences: string[];
}

const COLUMNS: Column<ImportedAgent>[] = [
  { header: 'agent', cell: (a) => a.agentId },
  { header: 'outcome', cell: (a) => a.outcome },
  { header: 'messages', cell: (a) => a.counts.messages, align: 'right' },
  { header: 'tool calls', cell: (a) => a.counts.toolCalls, align: 'right' },
  { header: 'events', cell: (a) => a.counts.events, align: 'right' },
  { header: 'check', cell: (a) => (a.differences.length === 0 ? 'ok' : a.differences.join('; ')) },
];

/** The export to import, as a file that can be read twice (stdin is copied to a temporary one). */
interface StagedInput {
  path: string;
  /** How messages name it. */
  label: string;
  remove(): Promise<void>;
}

async function stageInput(io: CliIo, input: string | undefined): Promise<StagedInput> {
  if (input !== undefined) {
    const info = await stat(input).catch((error: NodeJS.ErrnoException) => error);
    if (info instanceof Error || !info.isFile()) {
      throw new CliError(
        `cannot read ${input}: ${info instanceof Error ? info.message : 'not a file'}`,
        ExitCode.usage,
      );
    }
    return { path: input, label: input, remove: async () => {} };
  }
  const dir = await mkdtemp(join(tmpdir(), 'kode-store-import-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const path = join(dir, 'stdin.jsonl');
    await pipeline(io.stdin, createWriteStream(path));
    return { path, label: 'stdin', remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

function linesOf(path: string) {
  return createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
}

/** Reads the whole export once, writing nothing: throws `ExportFormatError` at the first problem. */
async function validate(path: string): Promise<void> {
  const lines = linesOf(path);
  try {
    for await (const _ of readExport(lines)) {
      // readExport checks each record, each agent's counts and the end line.
    }
  } finally {
    lines.close();
  }
}

/**
 * Runs `kode-store import`: reads an export from stdin (or `--input`),
 * checks all of it (a cut or damaged file is refused with exit code 1 and
 * nothing is written, and the destination is not even opened), then writes
 * each agent with the same idempotent copy as `migrate` (importing the same
 * file twice leaves one copy; agents already in the store under the same id
 * are replaced by the file's version).
 */
export async function runImport(
  location: string | undefined,
  options: ImportOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  const input = await stageInput(io, options.input);
  try {
    try {
      await validate(input.path);
    } catch (error) {
      if (!(error instanceof ExportFormatError)) throw error;
      const message = `${input.label}: ${error.message}`;
      await writeLine(io.stderr, `kode-store: ${message}`);
      await writeLine(io.stderr, 'kode-store import: the input was refused; nothing was imported.');
      if (options.json) {
        const kv = { instances: 0, records: 0 };
        await printJson(io, { location: locationLabel(location), agents: [], kv, ok: false, error: message });
      }
      return ExitCode.problemsFound;
    }
    const opened = await openWritable(io, location, 'the import destination');
    return await withLocation(opened, () => importInto(opened, input, options, io));
  } finally {
    await input.remove();
  }
}

async function importInto(
  opened: OpenedStoreLocation,
  input: StagedInput,
  options: ImportOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  const lines = linesOf(input.path);
  const imported: ImportedAgent[] = [];
  const kv = { instances: 0, records: 0 };
  const kvImporter = new KvImporter(opened);
  let failure: ExitCodeValue | undefined;
  try {
    for await (const item of readExport(lines)) {
      if (item.kind === 'agent') {
        const { bundle } = item;
        const { outcome, counts } = await copyAgent(bundle, opened.store, bundle.agentId, {
          sourceCounts: bundle.counts(),
        });
        const differences = diffCounts(counts, await countAgent(opened.store, bundle.agentId));
        imported.push({ agentId: bundle.agentId, outcome, counts, differences });
        await writeLine(io.stderr, `import: ${bundle.agentId} ${outcome} (${counts.events} events)`);
      } else if (item.kind === 'kvInstance' || item.kind === 'kvRecord') {
        await kvImporter.add(item);
        if (item.kind === 'kvInstance') kv.instances++;
        else kv.records++;
      } else {
        await kvImporter.flush();
      }
    }
  } catch (error) {
    // The input was checked whole; what fails here is the destination (or the file changed meanwhile).
    failure = await reportError(io, error);
    await writeLine(
      io.stderr,
      `kode-store import: stopped; ${imported.length} agent(s) before the problem were imported whole.`,
    );
  } finally {
    lines.close();
  }
  const ok = failure === undefined && imported.every((a) => a.differences.length === 0);
  if (options.json) {
    await printJson(io, { location: opened.label, agents: imported, kv, ok });
  } else {
    if (imported.length > 0) await writeLine(io.stdout, renderTable(COLUMNS, imported));
    await writeLine(
      io.stdout,
      `imported ${imported.length} agent(s), ${kv.instances} KV instance(s), ${kv.records} KV record(s) into ${opened.label}` +
        (kv.records > 0 && kvImporter.restamps
          ? ' (KV record ids, versions and timestamps re-stamped by the destination)'
          : ''),
    );
  }
  if (failure !== undefined) return failure;
  return ok ? ExitCode.ok : ExitCode.problemsFound;
}

/** Registers `import`. */
export function importCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('import')
    .description(
      'Read a `kode-store export` file (JSON Lines) from stdin and write its agents and KV data into a store. ' +
        "Re-running it is safe; agents with the same id are replaced by the file's version. " +
        'The whole file is checked first: a truncated or damaged one is refused (exit 1) before the store is opened.',
    )
    .argument('[location]', 'the store to import into (default: the environment)')
    .option('-i, --input <file>', 'read <file> instead of stdin')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  kode-store import postgres://postgres@127.0.0.1/agents < backup.jsonl',
    )
    .action(
      action(io, setExit, (location: string | undefined, options: ImportOptions) =>
        runImport(location, options, io),
      ),
    );
  return withStandardHelp(command);
}
