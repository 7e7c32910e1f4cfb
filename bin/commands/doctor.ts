import { Command } from 'commander';
import { LockTimeoutError } from '../../src/errors.js';
import type { AgentInfo, ConsistencyCheckResult, ExtendedStore, StoreHealthStatus } from '../../src/types.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, open, withLocation, withStandardHelp } from '../command-support.js';
import type { OpenedLocation } from '../open-location.js';
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
  /** Repairs made. */
  repaired: string[];
  /** Issues left after repairs. */
  remaining: string[];
}

/** The report `--json` prints. */
export interface DoctorReport {
  location: string;
  health: StoreHealthStatus;
  checked: number;
  agents: AgentDiagnosis[];
  ok: boolean;
}

/** How long a repair waits for an agent's lock by default. */
const REPAIR_LOCK_TIMEOUT_MS = 10_000;

function checkConsistency(opened: OpenedLocation, agentId: string): Promise<ConsistencyCheckResult> {
  return opened.kind === 'json'
    ? opened.reader.checkConsistency(agentId)
    : opened.store.checkConsistency(agentId);
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

const COLUMNS: Column<AgentDiagnosis>[] = [
  { header: 'agent', cell: (d) => d.agentId },
  { header: 'issues', cell: (d) => d.issues.join('\n') },
  { header: 'repaired', cell: (d) => d.repaired.join('\n') },
  { header: 'status', cell: (d) => (d.remaining.length === 0 ? 'ok now' : 'needs attention') },
];

/** Runs `kode-store doctor`: health, then consistency of every agent; exit 1 when something is wrong. */
export async function runDoctor(
  location: string | undefined,
  options: DoctorOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  // json: directories are read with corrupt files skipped: doctor reports
  // them as issues instead of stopping at the first.
  const opened = await open(io, location, { skipCorrupt: true });
  return withLocation(opened, async () => {
    if (options.repair && opened.kind === 'json') {
      throw new CliError('--repair: a json: location is read-only; migrate it first', ExitCode.usage);
    }
    const health =
      opened.kind === 'json' ? await opened.reader.healthCheck() : await opened.store.healthCheck();
    const ids = health.healthy ? await opened.source.list(options.agents) : [];
    const diagnoses: AgentDiagnosis[] = [];
    const progress = createProgress(io, 'doctor', 'agents');
    progress.start(ids.length);
    try {
      for (const agentId of ids) {
        const result = await checkConsistency(opened, agentId);
        const diagnosis: AgentDiagnosis = {
          agentId,
          issues: result.issues,
          repaired: [],
          remaining: result.issues,
        };
        if (options.repair && !result.consistent && opened.kind === 'store') {
          const repair = await repairMessageCount(
            opened.store,
            agentId,
            options.lockTimeoutMs ?? REPAIR_LOCK_TIMEOUT_MS,
          );
          if (repair) diagnosis.repaired.push(repair);
          diagnosis.remaining = (await checkConsistency(opened, agentId)).issues;
        }
        if (diagnosis.issues.length > 0) diagnoses.push(diagnosis);
        await progress.tick(`${agentId}: ${result.consistent ? 'ok' : `${result.issues.length} issue(s)`}`);
      }
    } finally {
      progress.stop();
    }
    const ok = health.healthy && diagnoses.every((d) => d.remaining.length === 0);
    const report: DoctorReport = {
      location: opened.label,
      health,
      checked: ids.length,
      agents: diagnoses,
      ok,
    };
    if (options.json) {
      await printJson(io, report);
    } else {
      await printHuman(io, report);
    }
    return ok ? ExitCode.ok : ExitCode.problemsFound;
  });
}

async function printHuman(io: CliIo, report: DoctorReport): Promise<void> {
  const { health } = report;
  const latency =
    health.database.latencyMs === undefined ? '' : ` (${health.database.latencyMs.toFixed(1)} ms)`;
  await writeLine(
    io.stdout,
    `health: ${health.healthy ? 'healthy' : 'UNHEALTHY'}; database ${health.database.connected ? 'connected' : 'not connected'}${latency}` +
      `${health.database.error ? `: ${health.database.error}` : ''}; file system ${health.fileSystem.writable ? 'writable' : 'not writable'}` +
      `${health.fileSystem.error ? ` (${health.fileSystem.error})` : ''}`,
  );
  if (report.agents.length > 0) await writeLine(io.stdout, renderTable(COLUMNS, report.agents));
  const repaired = report.agents.filter((d) => d.repaired.length > 0).length;
  const remaining = report.agents.filter((d) => d.remaining.length > 0).length;
  await writeLine(
    io.stdout,
    `${report.checked} agent(s) checked: ${report.agents.length} with issues, ${repaired} repaired, ${remaining} still need attention.`,
  );
  if (remaining > 0 && repaired === 0) {
    await writeLine(io.stdout, 'Run with --repair to fix what can be fixed without losing data.');
  }
}

/** Registers `doctor`. */
export function doctorCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('doctor')
    .description(
      "Check a store: its health (connectivity, latency, writable files), then every agent's consistency " +
        '(e.g. info.messageCount against the stored messages, torn event files, corrupt JSONStore files). ' +
        'Exits 1 when anything is wrong.',
    )
    .argument('[location]', 'the store to check (default: the environment)')
    .option(
      '--repair',
      'fix what cannot lose data: info.messageCount recomputed from the stored messages (under the agent lock)',
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
