import { Command, InvalidArgumentError } from 'commander';
import { type PrunePolicy, type PruneResult, supportsRetention } from '../../src/agent/retention.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import {
  action,
  nonNegativeInteger,
  open,
  openWritable,
  withLocation,
  withStandardHelp,
} from '../command-support.js';
import { printJson, renderKeyValues } from '../output.js';

/** Options of `kode-store prune`. */
export interface PruneCommandOptions {
  inactiveBefore?: number;
  eventsOlderThan?: number;
  keepEvents?: number;
  keepSnapshots?: number;
  channels?: string;
  template?: string;
  prefix?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** What `--json` prints. */
export interface PruneReport extends PruneResult {
  location: string;
  policy: {
    inactiveBefore?: string;
    eventsOlderThan?: string;
    keepEvents?: number;
    keepSnapshots?: number;
    channels?: string[];
    template?: string;
    prefix?: string;
  };
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/**
 * A point in time from the command line: an age (`90d`, `12h`, `30m`,
 * `45s`, `2w`: that long before now) or an ISO date (`2026-09-01`,
 * `2026-09-01T12:00:00Z`).
 */
export function parseTimeArgument(value: string, now = Date.now()): number {
  const age = /^(\d+)([smhdw])$/.exec(value.trim());
  if (age) return now - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS];
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const at = Date.parse(value);
    if (Number.isFinite(at)) return at;
  }
  throw new InvalidArgumentError('must be an age (90d, 12h, 30m, 45s, 2w) or an ISO date (2026-09-01)');
}

function policyFrom(options: PruneCommandOptions): PrunePolicy {
  const policy: PrunePolicy = {};
  if (options.inactiveBefore !== undefined) policy.inactiveBefore = options.inactiveBefore;
  if (options.template !== undefined) policy.templateId = options.template;
  if (options.prefix !== undefined) policy.prefix = options.prefix;
  if (options.eventsOlderThan !== undefined || options.keepEvents !== undefined) {
    policy.events = {
      ...(options.eventsOlderThan === undefined ? {} : { olderThan: options.eventsOlderThan }),
      ...(options.keepEvents === undefined ? {} : { keepNewest: options.keepEvents }),
      ...(options.channels === undefined ? {} : { channels: options.channels.split(',').filter(Boolean) }),
    };
  } else if (options.channels !== undefined) {
    throw new CliError('--channels needs --events-older-than or --keep-events', ExitCode.usage);
  }
  if (options.keepSnapshots !== undefined) policy.snapshots = { keepNewest: options.keepSnapshots };
  if (policy.inactiveBefore === undefined && policy.events === undefined && policy.snapshots === undefined) {
    throw new CliError(
      'nothing to prune: give --inactive-before, --events-older-than, --keep-events or --keep-snapshots',
      ExitCode.usage,
    );
  }
  return policy;
}

/**
 * `kode-store prune <location> ...`: removes inactive agents, old events and
 * extra snapshots (see `store.prune`), printing progress on stderr and a
 * summary (or, with `--json`, the report) on stdout. A dry run opens the
 * store read-only: it counts and changes nothing, not even the schema.
 */
export async function runPrune(
  io: CliIo,
  location: string | undefined,
  options: PruneCommandOptions,
): Promise<ExitCodeValue> {
  const policy = policyFrom(options);
  const opened = options.dryRun
    ? await open(io, location, { readOnly: true })
    : await openWritable(io, location, 'the location');
  return withLocation(opened, async () => {
    const store = opened.kind === 'store' ? opened.store : undefined;
    if (!store || !supportsRetention(store)) {
      throw new CliError(`${opened.label} (${opened.backend}) does not support prune`, ExitCode.usage);
    }
    const verb = options.dryRun ? 'would remove' : 'removed';
    const result = await store.prune(policy, {
      dryRun: options.dryRun === true,
      onProgress: async ({ phase, scannedAgents, removed }) => {
        if (phase !== 'removed') return;
        await writeLine(
          io.stderr,
          `prune: ${scannedAgents} agents scanned, ${verb} ${removed.agents} agents, ${removed.events} events, ${removed.snapshots} snapshots`,
        );
      },
    });
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    const report: PruneReport = {
      location: opened.label,
      policy: {
        ...(options.inactiveBefore === undefined ? {} : { inactiveBefore: iso(options.inactiveBefore) }),
        ...(options.eventsOlderThan === undefined ? {} : { eventsOlderThan: iso(options.eventsOlderThan) }),
        ...(options.keepEvents === undefined ? {} : { keepEvents: options.keepEvents }),
        ...(options.keepSnapshots === undefined ? {} : { keepSnapshots: options.keepSnapshots }),
        ...(policy.events?.channels === undefined ? {} : { channels: policy.events.channels }),
        ...(options.template === undefined ? {} : { template: options.template }),
        ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      },
      ...result,
    };
    if (options.json) {
      await printJson(io, report);
    } else {
      await writeLine(
        io.stdout,
        `${opened.label}: ${options.dryRun ? 'dry run, nothing changed' : 'pruned'}`,
      );
      await writeLine(
        io.stdout,
        renderKeyValues([
          ['agents scanned', result.scannedAgents],
          [`agents ${verb}`, result.agents],
          ['agents kept (written during the prune)', result.keptActive],
          [`messages ${verb}`, result.messages],
          [`tool calls ${verb}`, result.toolCalls],
          [`events ${verb}`, result.events],
          [`snapshots ${verb}`, result.snapshots],
          [`event files ${verb}`, result.files],
          [`JSON bytes ${verb}`, result.bytes],
        ]),
      );
    }
    return ExitCode.ok;
  });
}

function timeArgument(value: string): number {
  return parseTimeArgument(value);
}

export function pruneCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('prune')
    .description(
      'Remove inactive agents, old events and extra snapshots, in short transactions (safe while agents run). Stop with Ctrl-C and run again to finish.',
    )
    .argument('[location]', 'the store (default: the environment)')
    .option(
      '--inactive-before <age|date>',
      'delete agents not written since (90d, 12h, 2026-09-01)',
      timeArgument,
    )
    .option(
      '--events-older-than <age|date>',
      'of the agents that stay, remove events stored before',
      timeArgument,
    )
    .option('--keep-events <n>', 'of the agents that stay, keep only the newest n events', nonNegativeInteger)
    .option('--channels <list>', 'event rules apply to these channels only (comma-separated)')
    .option('--keep-snapshots <n>', 'keep only the newest n snapshots of each agent', nonNegativeInteger)
    .option('--template <id>', 'only agents of this templateId')
    .option('--prefix <prefix>', 'only agents whose id starts with prefix')
    .option('--dry-run', 'count what would be removed, change nothing')
    .option('--json', 'print the report as JSON')
    .action(
      action(io, setExit, (location: string | undefined, options: PruneCommandOptions) =>
        runPrune(io, location, options),
      ),
    );
  return withStandardHelp(command);
}
