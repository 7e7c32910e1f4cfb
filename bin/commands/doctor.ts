import { Command } from 'commander';
import { isKodeStoreError, LockTimeoutError } from '../../src/errors.js';
import { EventModeError, eventModeProblem } from '../../src/hybrid/event-modes.js';
import type { AgentInfo, ConsistencyCheckResult, ExtendedStore, StoreHealthStatus } from '../../src/types.js';
import { countAgent } from '../agent-copy.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, open, openWritable, withLocation, withStandardHelp } from '../command-support.js';
import { locationLabel, type OpenedLocation } from '../open-location.js';
import { type Column, printJson, renderTable } from '../output.js';
import { createProgress } from '../progress.js';

/** Options of `kode-store doctor`. */
export interface DoctorOptions {
  repair?: boolean;
  agents?: string;
  json?: boolean;
  /** How long a repair waits for the agent's lock (ms). */
  lockTimeoutMs?: number;
}

/** What doctor found about one agent. */
export interface AgentDiagnosis {
  agentId: string;
  /** Issues found (before any repair). */
  issues: string[];
  /** Some of the agent's stored data could not be read back (the issues say which). */
  unreadable: boolean;
  /** Repairs made. */
  repaired: string[];
  /** Issues left after repairs. */
  remaining: string[];
}

/** The report `--json` prints. */
export interface DoctorReport {
  location: string;
  /** Undefined when the store could not be opened at all (see `problems`). */
  health?: StoreHealthStatus;
  /**
   * What is wrong with the store as a whole: the database file failed its
   * integrity check (SQLite's `PRAGMA integrity_check`), or could not be read.
   */
  problems: string[];
  /** A repair made to the store as a whole (its schema upgraded). */
  storeRepairs: string[];
  checked: number;
  agents: AgentDiagnosis[];
  /** What to do about what was found, one sentence each. */
  advice: string[];
  ok: boolean;
}

/** How long a repair waits for an agent's lock by default. */
const REPAIR_LOCK_TIMEOUT_MS = 10_000;

/** True for errors that mean "this data is damaged" rather than "the tool could not work". */
function isDamage(error: unknown): boolean {
  return isKodeStoreError(error) && error.code === 'KODE_CORRUPT';
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A store whose own file can be checked as a whole (SqliteStore). */
interface IntegrityChecked {
  checkIntegrity(): Promise<string[]>;
}

function hasIntegrityCheck(store: unknown): store is IntegrityChecked {
  return typeof (store as Partial<IntegrityChecked>).checkIntegrity === 'function';
}

function checkConsistency(opened: OpenedLocation, agentId: string): Promise<ConsistencyCheckResult> {
  return opened.kind === 'json'
    ? opened.reader.checkConsistency(agentId)
    : opened.store.checkConsistency(agentId);
}

/**
 * One agent's checks: the store's consistency check, then a read of
 * everything it holds (every record decoded, the event stream to its end),
 * so that damage anywhere in the agent is found. Damage is an issue of the
 * agent, not the end of the run; anything else (a lost connection) stops it.
 */
async function diagnose(opened: OpenedLocation, agentId: string): Promise<AgentDiagnosis> {
  const issues: string[] = [];
  let unreadable = false;
  const unreadableBecause = (error: unknown) => {
    if (error instanceof EventModeError) {
      // Readable, in the other mode: the consistency check reported it already.
      if (!issues.includes(eventModeProblem(error.stored))) issues.push(eventModeProblem(error.stored));
      return;
    }
    if (!isDamage(error)) throw error;
    unreadable = true;
    const message = `unreadable: ${describeError(error)}`;
    if (!issues.includes(message)) issues.push(message);
  };
  try {
    issues.push(...(await checkConsistency(opened, agentId)).issues);
  } catch (error) {
    unreadableBecause(error);
  }
  try {
    await countAgent(opened.source, agentId);
  } catch (error) {
    unreadableBecause(error);
  }
  return { agentId, issues, unreadable, repaired: [], remaining: issues };
}

/**
 * The repairs doctor makes are those that cannot lose data: today, setting
 * `info.messageCount` to the number of messages actually stored (the count
 * is derived data; the messages are the truth). It runs under the agent's
 * lock and re-reads both under it, so a running agent's save is not
 * overwritten with stale info.
 */
async function repairMessageCount(
  store: ExtendedStore,
  agentId: string,
  lockTimeoutMs: number,
): Promise<string | undefined> {
  const probe = await store.loadInfo(agentId);
  const stored = (await store.loadMessages(agentId)).length;
  if (!probe || typeof probe.messageCount !== 'number' || probe.messageCount === stored) return undefined;
  let release: (() => Promise<void>) | undefined;
  try {
    release = await store.acquireAgentLock(agentId, lockTimeoutMs);
  } catch (error) {
    if (error instanceof LockTimeoutError)
      return `not repaired: the agent stayed locked for ${lockTimeoutMs} ms`;
    throw error;
  }
  try {
    const info = await store.loadInfo(agentId);
    const count = (await store.loadMessages(agentId)).length;
    if (!info || info.messageCount === count) return undefined;
    const repaired: AgentInfo = { ...info, messageCount: count };
    await store.saveInfo(agentId, repaired);
    return `info.messageCount ${info.messageCount} → ${count} (the number of stored messages)`;
  } finally {
    await release();
  }
}

/**
 * Opens the location to check it, read-only. With `--repair`, a schema older
 * than this kode-store (which a read-only store refuses to read) is opened
 * read-write instead, which upgrades it: that is a repair too.
 */
async function openForChecks(
  io: CliIo,
  location: string | undefined,
  options: DoctorOptions,
  storeRepairs: string[],
): Promise<OpenedLocation> {
  try {
    // json: directories are read with corrupt files skipped: doctor reports
    // them as issues instead of stopping at the first.
    return await open(io, location, { skipCorrupt: true });
  } catch (error) {
    if (!options.repair || !isKodeStoreError(error) || error.code !== 'KODE_UNSUPPORTED') throw error;
    const opened = await openWritable(io, location, 'the location to repair');
    storeRepairs.push(`schema upgraded to this kode-store's version (${describeError(error)})`);
    return opened;
  }
}

const COLUMNS: Column<AgentDiagnosis>[] = [
  { header: 'agent', cell: (d) => d.agentId },
  { header: 'issues', cell: (d) => d.issues.join('\n') },
  { header: 'repaired', cell: (d) => d.repaired.join('\n') },
  { header: 'status', cell: (d) => (d.remaining.length === 0 ? 'ok now' : 'needs attention') },
];

/**
 * Runs `kode-store doctor`: health, SQLite's integrity check, then every
 * agent's consistency and a read of all its data; exit 1 when anything is
 * wrong. The checks are read-only; `--repair` then opens the store
 * read-write for the repairs that cannot lose data.
 */
export async function runDoctor(
  location: string | undefined,
  options: DoctorOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  const report: DoctorReport = {
    location: '',
    problems: [],
    storeRepairs: [],
    checked: 0,
    agents: [],
    advice: [],
    ok: false,
  };
  let opened: OpenedLocation;
  try {
    opened = await openForChecks(io, location, options, report.storeRepairs);
  } catch (error) {
    if (!isDamage(error)) throw error;
    report.location = locationLabel(location);
    report.problems.push(describeError(error));
    return finish(io, report, options);
  }
  report.location = opened.label;
  await withLocation(opened, async () => {
    if (options.repair && opened.kind === 'json') {
      throw new CliError('--repair: a json: location is read-only; migrate it first', ExitCode.usage);
    }
    report.health =
      opened.kind === 'json' ? await opened.reader.healthCheck() : await opened.store.healthCheck();
    if (!report.health.healthy) return;
    if (opened.kind === 'store' && hasIntegrityCheck(opened.store)) {
      try {
        report.problems.push(...(await opened.store.checkIntegrity()));
      } catch (error) {
        // SQLite stops its check at some damage instead of listing it.
        if (!isDamage(error)) throw error;
        report.problems.push(describeError(error));
      }
    }
    let ids: string[];
    try {
      ids = await opened.source.list(options.agents);
    } catch (error) {
      if (!isDamage(error)) throw error;
      report.problems.push(`the list of agents could not be read: ${describeError(error)}`);
      return;
    }
    report.checked = ids.length;
    const progress = createProgress(io, 'doctor', 'agents');
    progress.start(ids.length);
    try {
      for (const agentId of ids) {
        const diagnosis = await diagnose(opened, agentId);
        if (diagnosis.issues.length > 0) report.agents.push(diagnosis);
        await progress.tick(
          `${agentId}: ${diagnosis.issues.length === 0 ? 'ok' : `${diagnosis.issues.length} issue(s)`}`,
        );
      }
    } finally {
      progress.stop();
    }
  });
  if (options.repair && opened.kind === 'store') await repair(io, location, report, options);
  return finish(io, report, options);
}

/** Repairs what can be repaired without losing data, in a read-write store opened for it. */
async function repair(
  io: CliIo,
  location: string | undefined,
  report: DoctorReport,
  options: DoctorOptions,
): Promise<void> {
  // Unreadable agents are left as they are: a repair would write over what may still be recovered.
  const repairable = report.agents.filter((d) => !d.unreadable);
  if (repairable.length === 0) return;
  const writable = await openWritable(io, location, 'the location to repair');
  await withLocation(writable, async () => {
    for (const diagnosis of repairable) {
      const repaired = await repairMessageCount(
        writable.store,
        diagnosis.agentId,
        options.lockTimeoutMs ?? REPAIR_LOCK_TIMEOUT_MS,
      );
      if (repaired) diagnosis.repaired.push(repaired);
      diagnosis.remaining = (await writable.store.checkConsistency(diagnosis.agentId)).issues;
    }
  });
}

/** What to do about what was found. */
function adviceFor(report: DoctorReport, repair: boolean): string[] {
  const advice: string[] = [];
  if (report.problems.length > 0) {
    advice.push(
      'The database itself is damaged or unreadable: stop the applications that use it, keep a copy of it as it is, ' +
        'and restore the latest backup (for SQLite, `sqlite3 <file> ".recover"` can salvage what is still readable).',
    );
  }
  const unreadable = report.agents.filter((d) => d.unreadable);
  if (unreadable.length > 0) {
    advice.push(
      `${unreadable.length} agent(s) could not be read back whole: restore them from a backup, or delete them ` +
        '(store.delete) once what they held is no longer needed; the other agents can be exported as usual ' +
        '(`kode-store export --agents <prefix>`).',
    );
  }
  const elsewhere = report.agents.filter((d) =>
    d.issues.some((issue) => issue.includes('KODE_STORE_EVENTS=')),
  );
  if (elsewhere.length > 0) {
    advice.push(
      `${elsewhere.length} agent(s) keep their events in the other mode: run doctor with KODE_STORE_EVENTS ` +
        '(and KODE_STORE_PATH) set as the application has them, or move the events with ' +
        '`kode-store events <location> --to file|database`.',
    );
  }
  const fixable = report.agents.filter(
    (d) => !d.unreadable && d.remaining.length > 0 && !elsewhere.includes(d),
  );
  if (fixable.length > 0 && !repair) {
    advice.push('Run with --repair to fix what can be fixed without losing data.');
  }
  return advice;
}

async function finish(io: CliIo, report: DoctorReport, options: DoctorOptions): Promise<ExitCodeValue> {
  report.advice = adviceFor(report, options.repair === true);
  report.ok =
    report.health?.healthy === true &&
    report.problems.length === 0 &&
    report.agents.every((d) => d.remaining.length === 0);
  if (options.json) await printJson(io, report);
  else await printHuman(io, report);
  return report.ok ? ExitCode.ok : ExitCode.problemsFound;
}

async function printHuman(io: CliIo, report: DoctorReport): Promise<void> {
  const { health } = report;
  if (health) {
    const latency =
      health.database.latencyMs === undefined ? '' : ` (${health.database.latencyMs.toFixed(1)} ms)`;
    await writeLine(
      io.stdout,
      `health: ${health.healthy ? 'healthy' : 'UNHEALTHY'}; database ${health.database.connected ? 'connected' : 'not connected'}${latency}` +
        `${health.database.error ? `: ${health.database.error}` : ''}; file system ${health.fileSystem.writable ? 'writable' : 'not writable'}` +
        `${health.fileSystem.error ? ` (${health.fileSystem.error})` : ''}`,
    );
  }
  for (const repaired of report.storeRepairs) await writeLine(io.stdout, `repaired: ${repaired}`);
  if (report.problems.length > 0) {
    await writeLine(io.stdout, `${report.location}: the store is damaged:`);
    for (const problem of report.problems) await writeLine(io.stdout, `  ${problem}`);
  }
  if (report.agents.length > 0) await writeLine(io.stdout, renderTable(COLUMNS, report.agents));
  const repaired = report.agents.filter((d) => d.repaired.length > 0).length;
  const remaining = report.agents.filter((d) => d.remaining.length > 0).length;
  const unreadable = report.agents.filter((d) => d.unreadable).length;
  await writeLine(
    io.stdout,
    `${report.checked} agent(s) checked: ${report.agents.length} with issues (${unreadable} unreadable), ` +
      `${repaired} repaired, ${remaining} still need attention.`,
  );
  for (const line of report.advice) await writeLine(io.stdout, line);
}

/** Registers `doctor`. */
export function doctorCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('doctor')
    .description(
      'Check a store, reading only: its health (connectivity, latency, writable files), the database file ' +
        "(SQLite's integrity check), then every agent: its consistency (e.g. info.messageCount against the " +
        'stored messages, torn event files, corrupt JSONStore files) and a read of everything it holds. ' +
        'Every unreadable agent is reported and the check goes on. Exits 1 when anything is wrong, and says what to do.',
    )
    .argument('[location]', 'the store to check (default: the environment)')
    .option(
      '--repair',
      'then fix what cannot lose data: info.messageCount recomputed from the stored messages (under the agent lock), ' +
        'an older schema upgraded; this opens the store read-write',
    )
    .option('--agents <prefix>', 'only agents whose id starts with <prefix>')
    .option('--json', 'print the report as JSON')
    .action(
      action(io, setExit, (location: string | undefined, options: DoctorOptions) =>
        runDoctor(location, options, io),
      ),
    );
  return withStandardHelp(command);
}
