import { Command, Option } from 'commander';
import type { AgentCounts } from '../../src/transfer/export-format.js';
import type { JsonStoreEventOrder } from '../../src/transfer/json-store-events.js';
import { POOL_META_ID } from '../../src/transfer/json-store-layout.js';
import { type CopyOutcome, compareAgents, copyAgent, countAgent, diffCounts } from '../agent-copy.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import {
  action,
  eventOrderOption,
  open,
  openWritable,
  positiveInteger,
  printProblems,
  withStandardHelp,
} from '../command-support.js';
import { copyKvData, type KvCopyResult } from '../kv-copy.js';
import type { OpenedLocation } from '../open-location.js';
import { type Column, printJson, renderTable } from '../output.js';
import { createProgress } from '../progress.js';

/** Options of `kode-store migrate`. */
export interface MigrateOptions {
  /** Source; the environment when absent. */
  from?: string;
  /** Destination; the environment when absent. */
  to?: string;
  /** Only agents whose id starts with this (literally). */
  agents?: string;
  skipCorrupt?: boolean;
  /** Deep comparison of every record after copying, instead of counts only. */
  verify?: boolean;
  batchSize?: number;
  eventOrder?: JsonStoreEventOrder;
  json?: boolean;
}

/** What happened to one agent. */
export interface MigratedAgent {
  agentId: string;
  outcome: CopyOutcome;
  counts: AgentCounts;
  /** Empty when the destination matches (counts, or every record with `--verify`). */
  differences: string[];
}

/** The result of a migration, as `--json` prints it. */
export interface MigrateReport {
  from: string;
  to: string;
  agents: MigratedAgent[];
  /** Corrupt source files (json: with `--skip-corrupt`) left out, as `path[:line]: reason`. */
  skipped: string[];
  kv: KvCopyResult;
  verification: 'counts' | 'deep';
  ok: boolean;
}

const COLUMNS: Column<MigratedAgent>[] = [
  { header: 'agent', cell: (a) => a.agentId },
  { header: 'outcome', cell: (a) => a.outcome },
  { header: 'messages', cell: (a) => a.counts.messages, align: 'right' },
  { header: 'tool calls', cell: (a) => a.counts.toolCalls, align: 'right' },
  { header: 'events', cell: (a) => a.counts.events, align: 'right' },
  { header: 'snapshots', cell: (a) => a.counts.snapshots, align: 'right' },
  {
    header: 'history',
    cell: (a) => `${a.counts.historyWindows}w ${a.counts.compressionRecords}c ${a.counts.recoveredFiles}f`,
  },
  { header: 'check', cell: (a) => (a.differences.length === 0 ? 'ok' : a.differences.join('; ')) },
];

async function agentIds(source: OpenedLocation, prefix: string | undefined): Promise<string[]> {
  const ids = await source.source.list(prefix);
  // The pool's shutdown record is not an agent of a JSONStore directory, but
  // the SDK's AgentPool reads it back with loadInfo('__pool_meta__') to
  // resume; it travels under the same id so pools resume after a migration.
  if (
    source.kind === 'json' &&
    (prefix === undefined || POOL_META_ID.startsWith(prefix)) &&
    (await source.reader.loadPoolRecord()) !== undefined
  ) {
    ids.push(POOL_META_ID);
  }
  return ids;
}

/**
 * Copies every agent (and the KV data) from one location to another; see
 * `kode-store migrate --help`. Returns the exit code: 0 when every agent
 * checks out, 1 when a check found differences or the source has corrupt
 * files (and `--skip-corrupt` was not given).
 */
export async function runMigrate(options: MigrateOptions, io: CliIo): Promise<ExitCodeValue> {
  if (options.from === undefined && options.to === undefined) {
    throw new CliError(
      'give --from, --to or both (the one left out is the store the environment names)',
      ExitCode.usage,
    );
  }
  if (options.from === options.to)
    throw new CliError('--from and --to name the same location', ExitCode.usage);
  const source = await open(io, options.from, {
    skipCorrupt: options.skipCorrupt,
    eventOrder: options.eventOrder,
  });
  try {
    const destination = await openWritable(io, options.to, 'the destination');
    try {
      return await migrate(source, destination, options, io);
    } finally {
      await destination.close();
    }
  } finally {
    await source.close();
  }
}

async function migrate(
  source: OpenedLocation,
  destination: Extract<OpenedLocation, { kind: 'store' }>,
  options: MigrateOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  const ids = await agentIds(source, options.agents);
  const skipped: string[] = [];
  if (source.kind === 'json') {
    // Read everything once before writing anything: every corrupt file is
    // named at once, and without --skip-corrupt nothing is copied at all.
    const problems = await source.reader.scan(ids.filter((id) => id !== POOL_META_ID));
    if (problems.length > 0 && !options.skipCorrupt) {
      await printProblems(io, 'corrupt: ', problems);
      await writeLine(
        io.stderr,
        `kode-store migrate: ${problems.length} corrupt file(s) or line(s) in ${source.label}; nothing was copied. ` +
          'Repair them, or re-run with --skip-corrupt to copy everything else.',
      );
      return ExitCode.problemsFound;
    }
  }

  const progress = createProgress(io, 'migrate', 'agents');
  const migrated: MigratedAgent[] = [];
  progress.start(ids.length);
  try {
    if (source.kind === 'json') {
      for (const problem of source.reader.problems) {
        await progress.note(
          `skipping corrupt ${problem.line === undefined ? problem.path : `${problem.path}:${problem.line}`}`,
        );
      }
    }
    for (const agentId of ids) {
      const sourceCounts = await countAgent(source.source, agentId);
      const { outcome, counts } = await copyAgent(source.source, destination.store, agentId, {
        eventBatchSize: options.batchSize,
        sourceCounts,
        onEvents: (count) => progress.addEvents(count),
      });
      migrated.push({ agentId, outcome, counts, differences: [] });
      await progress.tick(
        `${agentId} ${outcome}: ${counts.messages} messages, ${counts.toolCalls} tool calls, ${counts.events} events`,
      );
    }
  } finally {
    progress.stop();
  }
  const kv = await copyKvData(source, destination);

  for (const agent of migrated) {
    agent.differences = options.verify
      ? await compareAgents(source.source, destination.store, agent.agentId)
      : diffCounts(agent.counts, await countAgent(destination.store, agent.agentId));
  }
  if (source.kind === 'json') {
    skipped.push(
      ...source.reader.problems.map(
        (p) => `${p.line === undefined ? p.path : `${p.path}:${p.line}`}: ${p.message}`,
      ),
    );
  }
  const ok = migrated.every((a) => a.differences.length === 0) && kv.differences.length === 0;
  const report: MigrateReport = {
    from: source.label,
    to: destination.label,
    agents: migrated,
    skipped,
    kv,
    verification: options.verify ? 'deep' : 'counts',
    ok,
  };
  await printReport(io, report, options.json === true);
  return ok ? ExitCode.ok : ExitCode.problemsFound;
}

async function printReport(io: CliIo, report: MigrateReport, json: boolean): Promise<void> {
  if (json) {
    await printJson(io, report);
    return;
  }
  await writeLine(io.stdout, renderTable(COLUMNS, report.agents));
  const changed = report.agents.filter((a) => a.outcome !== 'unchanged').length;
  const events = report.agents.reduce((sum, a) => sum + a.counts.events, 0);
  await writeLine(
    io.stdout,
    `${report.agents.length} agent(s) from ${report.from} to ${report.to}: ${changed} written, ` +
      `${report.agents.length - changed} already there; ${events} events.`,
  );
  await writeLine(io.stdout, report.kv.summary);
  if (report.skipped.length > 0) {
    await writeLine(io.stdout, `${report.skipped.length} corrupt file(s)/line(s) skipped:`);
    for (const line of report.skipped) await writeLine(io.stdout, `  ${line}`);
  }
  const failed =
    report.agents.filter((a) => a.differences.length > 0).length + (report.kv.differences.length > 0 ? 1 : 0);
  await writeLine(
    io.stdout,
    report.ok
      ? `verification (${report.verification}): every agent matches`
      : `verification (${report.verification}) FAILED for ${failed} item(s)${report.kv.differences.length > 0 ? `; KV: ${report.kv.differences.join('; ')}` : ''}`,
  );
}

/** Registers `migrate`. */
export function migrateCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('migrate')
    .description(
      'Copy every agent (info, messages, tool calls, todos, events in stored order, history windows, ' +
        'compression records, recovered files, media cache, snapshots) and the KV data from one store to another. ' +
        'The source is never modified. Safe to interrupt and re-run: agents already copied are left as they are, ' +
        'a half-copied agent is deleted from the destination and copied again. Ends with a per-agent count check.',
    )
    .option(
      '--from <location>',
      'where to copy from (json:<dir> for an SDK JSONStore directory; default: the environment)',
    )
    .option('--to <location>', 'where to copy to (default: the store the environment names)')
    .option('--agents <prefix>', 'only agents whose id starts with <prefix>')
    .option(
      '--skip-corrupt',
      'json: sources: leave out corrupt files and torn event lines (each is named) instead of stopping',
    )
    .option('--verify', 'compare every record of every agent after copying, not just counts')
    .addOption(
      new Option('--batch-size <n>', 'events appended per batch').argParser(positiveInteger).default(500),
    )
    .addOption(eventOrderOption())
    .option('--json', 'print the report as JSON')
    .action(action(io, setExit, (options: MigrateOptions) => runMigrate(options, io)));
  return withStandardHelp(command);
}
