import { Command, Option } from 'commander';
import { AGENT_COUNT_KINDS, type AgentCounts } from '../../src/transfer/export-format.js';
import type {
  AgentChannel,
  AgentInfo,
  ContentBlock,
  Message,
  Timeline,
  ToolCallRecord,
} from '../../src/types.js';
import { countAgent } from '../agent-copy.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import {
  action,
  eventOrderOption,
  nonNegativeInteger,
  open,
  withLocation,
  withStandardHelp,
} from '../command-support.js';
import { inspectKv } from '../kv-inspect.js';
import type { OpenedLocation } from '../open-location.js';
import {
  type Column,
  isoTime,
  type Page,
  pageOf,
  preview,
  printJson,
  printPage,
  renderKeyValues,
} from '../output.js';

/** The views of `kode-store inspect`. */
export const INSPECT_VIEWS = ['agents', 'agent', 'messages', 'events', 'tools', 'kv'] as const;
export type InspectView = (typeof INSPECT_VIEWS)[number];

/** Options of `kode-store inspect`. */
export interface InspectOptions {
  limit: number;
  offset: number;
  prefix?: string;
  channel?: AgentChannel;
  /** events: only entries with `bookmark.seq` greater than this. */
  since?: number;
  json?: boolean;
  skipCorrupt?: boolean;
  eventOrder?: 'timestamp' | 'seq';
}

/** Default page size. */
export const DEFAULT_PAGE_SIZE = 50;

async function requireAgent(opened: OpenedLocation, agentId: string | undefined): Promise<string> {
  if (agentId === undefined) throw new CliError('this view needs an agent id', ExitCode.usage);
  if (!(await opened.source.exists(agentId))) {
    throw new CliError(
      `agent ${JSON.stringify(agentId)} not found in ${opened.label}`,
      ExitCode.problemsFound,
    );
  }
  return agentId;
}

// ---- agents -------------------------------------------------------------

interface AgentRow {
  agentId: string;
  info?: AgentInfo;
}

const AGENT_COLUMNS: Column<AgentRow>[] = [
  { header: 'agent', cell: (r) => r.agentId },
  { header: 'template', cell: (r) => r.info?.templateId },
  { header: 'created', cell: (r) => r.info?.createdAt },
  { header: 'messages', cell: (r) => r.info?.messageCount, align: 'right' },
  { header: 'breakpoint', cell: (r) => r.info?.breakpoint },
  { header: 'lineage', cell: (r) => (r.info?.lineage?.length ? r.info.lineage.length : '') },
];

async function inspectAgents(
  io: CliIo,
  opened: OpenedLocation,
  options: InspectOptions,
): Promise<ExitCodeValue> {
  const ids = await opened.source.list(options.prefix);
  const page = pageOf(ids, options);
  // Only the shown page's info is loaded: listing a million agents stays cheap.
  const rows: AgentRow[] = [];
  for (const agentId of page.items) rows.push({ agentId, info: await opened.source.loadInfo(agentId) });
  await printPage(io, { ...page, items: rows }, 'agents', AGENT_COLUMNS, options.json === true);
  return ExitCode.ok;
}

// ---- agent ----------------------------------------------------------------

async function inspectAgent(
  io: CliIo,
  opened: OpenedLocation,
  id: string | undefined,
  options: InspectOptions,
) {
  const agentId = await requireAgent(opened, id);
  const info = await opened.source.loadInfo(agentId);
  const counts: AgentCounts = await countAgent(opened.source, agentId);
  if (options.json) {
    await printJson(io, { agentId, info, counts });
    return ExitCode.ok;
  }
  const entries: Array<readonly [string, unknown]> = [['agent', agentId]];
  if (info) {
    for (const key of [
      'templateId',
      'createdAt',
      'configVersion',
      'messageCount',
      'lastSfpIndex',
      'breakpoint',
    ] as const) {
      if (info[key] !== undefined) entries.push([key, info[key]]);
    }
    if (info.lastBookmark)
      entries.push([
        'lastBookmark',
        `seq ${info.lastBookmark.seq} at ${isoTime(info.lastBookmark.timestamp)}`,
      ]);
    if (info.lineage?.length) entries.push(['lineage', info.lineage.join(' → ')]);
    if (info.metadata) entries.push(['metadata', preview(info.metadata, 80)]);
  } else {
    entries.push(['info', '(none saved)']);
  }
  for (const kind of AGENT_COUNT_KINDS)
    if (kind !== 'info') entries.push([`stored ${kind}`, String(counts[kind])]);
  await writeLine(io.stdout, renderKeyValues(entries));
  return ExitCode.ok;
}

// ---- messages -------------------------------------------------------------

interface Numbered<T> {
  index: number;
  value: T;
}

function blockText(block: ContentBlock): string {
  switch (block.type) {
    case 'text':
      return block.text;
    case 'tool_use':
      return `[tool_use ${block.name} ${preview(block.input, 40)}]`;
    case 'tool_result':
      return `[tool_result${block.is_error ? ' error' : ''} ${preview(block.content, 40)}]`;
    case 'reasoning':
      return `[reasoning] ${block.reasoning}`;
    default:
      return `[${block.type}]`;
  }
}

const MESSAGE_COLUMNS: Column<Numbered<Message>>[] = [
  { header: '#', cell: (m) => m.index, align: 'right' },
  { header: 'role', cell: (m) => m.value.role },
  { header: 'blocks', cell: (m) => (m.value.content ?? []).map((b) => b.type).join(',') },
  { header: 'text', cell: (m) => preview((m.value.content ?? []).map(blockText).join(' '), 70) },
];

async function inspectMessages(
  io: CliIo,
  opened: OpenedLocation,
  id: string | undefined,
  options: InspectOptions,
) {
  const agentId = await requireAgent(opened, id);
  const messages = (await opened.source.loadMessages(agentId)).map((value, index) => ({ index, value }));
  const page = pageOf(messages, options);
  if (options.json) {
    await printJson(io, { agentId, ...page, items: page.items.map((m) => m.value) });
    return ExitCode.ok;
  }
  await printPage(io, page, 'messages', MESSAGE_COLUMNS, false);
  return ExitCode.ok;
}

// ---- events -----------------------------------------------------------------

/** A short description of an event for the table; the full event is in `--json`. */
export function eventSummary(event: Timeline['event']): string {
  const e = event as Record<string, unknown>;
  const call = e.call as { name?: string; state?: string } | undefined;
  switch (event.type) {
    case 'text_chunk':
    case 'think_chunk':
      return preview(e.delta, 60);
    case 'text_chunk_end':
      return preview(e.text, 60);
    case 'tool:start':
    case 'tool:end':
    case 'tool_executed':
    case 'permission_required':
      return `${call?.name ?? ''} ${call?.state ?? ''}`.trim();
    case 'tool:error':
      return `${call?.name ?? ''}: ${preview(e.error, 50)}`;
    case 'permission_decided':
      return `${String(e.callId)} ${String(e.decision)} by ${String(e.decidedBy)}`;
    case 'state_changed':
      return String(e.state);
    case 'breakpoint_changed':
      return `${String(e.previous)} → ${String(e.current)}`;
    case 'token_usage':
      return `${String(e.inputTokens)} in, ${String(e.outputTokens)} out`;
    case 'done':
      return `step ${String(e.step)} ${String(e.reason)}`;
    case 'error':
      return `${String(e.severity)} ${String(e.phase)}: ${preview(e.message, 50)}`;
    default: {
      const { channel: _c, type: _t, bookmark: _b, ...rest } = e;
      return preview(rest, 60);
    }
  }
}

const EVENT_COLUMNS: Column<Numbered<Timeline>>[] = [
  { header: '#', cell: (e) => e.index, align: 'right' },
  { header: 'seq', cell: (e) => e.value.bookmark?.seq, align: 'right' },
  { header: 'time', cell: (e) => isoTime(e.value.bookmark?.timestamp) },
  { header: 'channel', cell: (e) => e.value.event?.channel },
  { header: 'type', cell: (e) => e.value.event?.type },
  { header: 'summary', cell: (e) => (e.value.event ? eventSummary(e.value.event) : '') },
];

async function inspectEvents(
  io: CliIo,
  opened: OpenedLocation,
  id: string | undefined,
  options: InspectOptions,
) {
  const agentId = await requireAgent(opened, id);
  const stream = opened.source.readEvents(agentId, {
    channel: options.channel,
    since: options.since === undefined ? undefined : { seq: options.since, timestamp: 0 },
  });
  // The stream is read only up to the end of the page (plus one entry to
  // know whether more follow): a long event log is never loaded whole.
  const items: Numbered<Timeline>[] = [];
  let index = 0;
  let more = false;
  for await (const value of stream) {
    if (index >= options.offset) {
      if (options.limit !== 0 && items.length >= options.limit) {
        more = true;
        break;
      }
      items.push({ index, value });
    }
    index++;
  }
  const page: Page<Numbered<Timeline>> = { items, offset: options.offset, limit: options.limit, more };
  // Without more entries the stream was read to its end, so its length is known.
  if (!more) page.total = index;
  if (options.json) {
    await printJson(io, { agentId, ...page, items: items.map((e) => e.value) });
    return ExitCode.ok;
  }
  await printPage(io, page, 'events', EVENT_COLUMNS, false);
  return ExitCode.ok;
}

// ---- tools ------------------------------------------------------------------

const TOOL_COLUMNS: Column<Numbered<ToolCallRecord>>[] = [
  { header: '#', cell: (t) => t.index, align: 'right' },
  { header: 'id', cell: (t) => t.value.id },
  { header: 'tool', cell: (t) => t.value.name },
  { header: 'state', cell: (t) => t.value.state },
  {
    header: 'approval',
    cell: (t) => (t.value.approval?.required ? (t.value.approval.decision ?? 'pending') : ''),
  },
  { header: 'created', cell: (t) => isoTime(t.value.createdAt) },
  { header: 'ms', cell: (t) => t.value.durationMs, align: 'right' },
  { header: 'error', cell: (t) => (t.value.error ? preview(t.value.error, 40) : '') },
];

async function inspectTools(
  io: CliIo,
  opened: OpenedLocation,
  id: string | undefined,
  options: InspectOptions,
) {
  const agentId = await requireAgent(opened, id);
  const records = (await opened.source.loadToolCallRecords(agentId)).map((value, index) => ({
    index,
    value,
  }));
  const page = pageOf(records, options);
  if (options.json) {
    await printJson(io, { agentId, ...page, items: page.items.map((t) => t.value) });
    return ExitCode.ok;
  }
  await printPage(io, page, 'tool calls', TOOL_COLUMNS, false);
  return ExitCode.ok;
}

// ---- command ----------------------------------------------------------------

function isView(value: string | undefined): value is InspectView {
  return (INSPECT_VIEWS as readonly string[]).includes(value ?? '');
}

/** Splits `[location] <view> [args...]`: a first word that is a view name means "no location". */
export function splitInspectArgs(args: string[]): { location?: string; view: InspectView; rest: string[] } {
  const [first, second, ...others] = args;
  if (isView(first)) return { view: first, rest: second === undefined ? others : [second, ...others] };
  if (!isView(second)) {
    throw new CliError(
      `unknown view ${JSON.stringify(second ?? '')}; use one of ${INSPECT_VIEWS.join(', ')}`,
      ExitCode.usage,
    );
  }
  return { location: first, view: second, rest: others };
}

/** Runs `kode-store inspect [location] <view> [args...]`. */
export async function runInspect(args: string[], options: InspectOptions, io: CliIo): Promise<ExitCodeValue> {
  const { location, view, rest } = splitInspectArgs(args);
  const opened = await open(io, location, {
    skipCorrupt: options.skipCorrupt,
    eventOrder: options.eventOrder,
  });
  return withLocation(opened, async () => {
    switch (view) {
      case 'agents':
        return inspectAgents(io, opened, options);
      case 'agent':
        return inspectAgent(io, opened, rest[0], options);
      case 'messages':
        return inspectMessages(io, opened, rest[0], options);
      case 'events':
        return inspectEvents(io, opened, rest[0], options);
      case 'tools':
        return inspectTools(io, opened, rest[0], options);
      case 'kv':
        return inspectKv(io, opened, rest, options);
    }
  });
}

/** Registers `inspect`. */
export function inspectCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('inspect')
    .description('Look inside a store: its agents, one agent, its messages, events, tool calls, or KV data.')
    .usage('[location] <view> [args...] [options]')
    .argument('<args...>', 'an optional location, then a view and its arguments (see below)')
    .addOption(
      new Option('--limit <n>', 'rows per page (0: all)')
        .argParser(nonNegativeInteger)
        .default(DEFAULT_PAGE_SIZE),
    )
    .addOption(new Option('--offset <n>', 'rows to skip').argParser(nonNegativeInteger).default(0))
    .option('--prefix <prefix>', 'agents: only ids starting with <prefix>')
    .addOption(
      new Option('--channel <channel>', 'events: only this channel').choices([
        'progress',
        'control',
        'monitor',
      ]),
    )
    .addOption(
      new Option('--since <seq>', 'events: only entries with bookmark.seq greater than <seq>').argParser(
        nonNegativeInteger,
      ),
    )
    .option('--skip-corrupt', 'json: locations: leave out corrupt files instead of stopping')
    .addOption(eventOrderOption())
    .option('--json', 'print JSON instead of a table (full values, same paging)')
    .addHelpText(
      'after',
      `
Views:
  agents                     agent ids with template, creation time, message count (--prefix)
  agent <id>                 one agent's info and how many records of each kind it holds
  messages <id>              the conversation, one row per message
  events <id>                the event stream in stored order (--channel, --since <seq>)
  tools <id>                 tool-call records with state, approval, duration, error
  kv [instance [namespace]]  KV instances, an instance's namespaces, or a namespace's records

Examples:
  kode-store inspect sqlite:./data/agents.db agents
  kode-store inspect json:./data/store events agt-123 --channel control --since 40
  kode-store inspect messages agt-123 --offset 50 --limit 50      (store from the environment)`,
    )
    .action(action(io, setExit, (args: string[], options: InspectOptions) => runInspect(args, options, io)));
  return withStandardHelp(command);
}
