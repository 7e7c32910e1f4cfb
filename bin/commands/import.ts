import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { Command } from 'commander';
import { type AgentCounts, readExport } from '../../src/export-format.js';
import { type CopyOutcome, copyAgent, countAgent, diffCounts } from '../agent-copy.js';
import { type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, openWritable, reportError, withLocation, withStandardHelp } from '../command-support.js';
import { KvImporter } from '../kv-copy.js';
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

/**
 * Runs `kode-store import`: reads an export from stdin (or `--input`) and
 * writes each agent once all its lines are in, with the same idempotent copy
 * as `migrate` (importing the same file twice leaves one copy; agents already
 * in the store under the same id are replaced by the file's version). A cut
 * or damaged file stops the import at the damage, with exit code 1; agents
 * before it are imported whole.
 */
export async function runImport(
  location: string | undefined,
  options: ImportOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  const opened = await openWritable(io, location, 'the import destination');
  return withLocation(opened, async () => {
    const input: Readable = options.input === undefined ? io.stdin : createReadStream(options.input, 'utf8');
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
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
  });
}

/** Registers `import`. */
export function importCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('import')
    .description(
      'Read a `kode-store export` file (JSON Lines) from stdin and write its agents and KV data into a store. ' +
        "Re-running it is safe; agents with the same id are replaced by the file's version. " +
        'A truncated or damaged file is refused at the damage (exit 1).',
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
