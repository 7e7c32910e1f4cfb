import { Command, Option } from 'commander';
import { eventPlacementFromEnv } from '../../src/config/store-config.js';
import type { EventMode } from '../../src/hybrid/event-modes.js';
import { canMoveEvents, type MovedAgent, moveEvents } from '../../src/transfer/event-mode-move.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, openWritable, withLocation, withStandardHelp } from '../command-support.js';
import { type Column, printJson, renderTable } from '../output.js';
import { createProgress } from '../progress.js';

/** Options of `kode-store events`. */
export interface EventsOptions {
  to: EventMode;
  /** The hybrid mode's directory (default KODE_STORE_PATH, else ./data/store). */
  fileStoreDir?: string;
  /** Only these agents (comma-separated ids). */
  agents?: string;
  json?: boolean;
}

/** What `--json` prints. */
export interface EventsReport {
  location: string;
  to: EventMode;
  fileStoreBaseDir: string;
  agents: MovedAgent[];
  events: number;
}

const COLUMNS: Column<MovedAgent>[] = [
  { header: 'agent', cell: (a) => a.agentId },
  { header: 'outcome', cell: (a) => a.outcome },
  { header: 'events', cell: (a) => a.events, align: 'right' },
];

/**
 * `kode-store events <location> --to file|database`: moves every agent's
 * events to the other mode, verified agent by agent, resumable after an
 * interruption (see `moveEvents`).
 */
export async function runEvents(
  io: CliIo,
  location: string | undefined,
  options: EventsOptions,
): Promise<ExitCodeValue> {
  if (options.to !== 'file' && options.to !== 'database') {
    throw new CliError(`--to must be file or database, got ${JSON.stringify(options.to)}`, ExitCode.usage);
  }
  const fileStoreBaseDir = options.fileStoreDir ?? eventPlacementFromEnv(io.env).fileStoreBaseDir;
  const opened = await openWritable(io, location, 'the location');
  return withLocation(opened, async () => {
    const store = opened.kind === 'store' ? opened.store : undefined;
    if (!canMoveEvents(store)) {
      throw new CliError(
        `${opened.label} (${opened.backend}) keeps no events in files: nothing to move`,
        ExitCode.usage,
      );
    }
    const agentIds = options.agents?.split(',').filter(Boolean);
    const progress = createProgress(io, `events -> ${options.to}`, 'agents');
    let started = false;
    let moved: MovedAgent[];
    try {
      moved = await moveEvents(store.eventRows(), {
        to: options.to,
        fileStoreBaseDir,
        agentIds,
        onEvents: (count) => progress.addEvents(count),
        onAgent: async (agent, _index, total) => {
          if (!started) {
            progress.start(total);
            started = true;
          }
          await progress.tick(`${agent.agentId}: ${agent.outcome} (${agent.events} events)`);
        },
      });
    } finally {
      progress.stop();
    }
    const report: EventsReport = {
      location: opened.label,
      to: options.to,
      fileStoreBaseDir,
      agents: moved,
      events: moved.reduce((sum, agent) => sum + agent.events, 0),
    };
    if (options.json) {
      await printJson(io, report);
    } else if (moved.length === 0) {
      await writeLine(
        io.stdout,
        `no agent has events to move to ${options.to === 'file' ? 'files' : 'the database'}`,
      );
    } else {
      await writeLine(io.stdout, renderTable(COLUMNS, moved));
      await writeLine(
        io.stdout,
        `${moved.length} agents, ${report.events} events now in ${options.to === 'file' ? `files under ${fileStoreBaseDir}` : 'the database'}`,
      );
    }
    return ExitCode.ok;
  });
}

export function eventsCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('events')
    .description(
      "Move agents' events between database mode (rows) and hybrid mode (files), verified and resumable. Stop the application first.",
    )
    .argument('[location]', 'the store (default: the environment)')
    .addOption(
      new Option('--to <mode>', 'where events go').choices(['file', 'database']).makeOptionMandatory(),
    )
    .option('--file-store-dir <dir>', "hybrid mode's directory (default: KODE_STORE_PATH, else ./data/store)")
    .option('--agents <ids>', 'only these agents (comma-separated ids)')
    .option('--json', 'print the report as JSON')
    .action(
      action(io, setExit, (location: string | undefined, options: EventsOptions) =>
        runEvents(io, location, options),
      ),
    );
  return withStandardHelp(command);
}
