import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Column, renderTable } from '../bin/output.js';
import type { BenchProfile } from './bench-profile.js';
import { type BenchResult, oursFaster, type SkippedWorkload } from './bench-result.js';
import type { MachineDescription } from './machine.js';

/** The content of `bench/results/latest.json`. */
export interface BenchReport {
  machine: MachineDescription;
  /** When the run started (ISO-8601). */
  date: string;
  /** `full`, `quick` or `large`, with the sizes used. */
  profile: BenchProfile;
  /** How long the whole run took, in seconds. */
  durationSeconds: number;
  /**
   * The machine's 1, 5 and 15-minute load averages when the run started and
   * ended: other work on the machine (a test suite, a build) shows here and
   * in the figures.
   */
  loadAverage: { atStart: number[]; atEnd: number[] };
  results: BenchResult[];
  /** Workloads that did not run on a backend, with the reason. */
  skipped: SkippedWorkload[];
  /** Workloads that failed on a backend (the run's exit code is then 1). */
  errors: SkippedWorkload[];
}

/** A number for the table: 3 significant digits at most, thousands separated. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function withUnit(value: number | null, unit: string): string {
  if (value === null) return '–';
  return unit === '×' ? `${formatNumber(value)}×` : `${formatNumber(value)} ${unit}`;
}

const COLUMNS: ReadonlyArray<Column<BenchResult>> = [
  { header: 'backend', cell: (r) => r.backend },
  { header: 'workload', cell: (r) => r.workload },
  { header: 'metric', cell: (r) => r.metric },
  { header: 'value', cell: (r) => withUnit(r.value, r.unit), align: 'right' },
  { header: 'raw', cell: (r) => withUnit(r.raw, r.unit), align: 'right' },
  { header: 'ratio', cell: (r) => (r.ratio === null ? '–' : `${r.ratio.toFixed(2)}×`), align: 'right' },
  { header: 'target', cell: (r) => r.target ?? '' },
  { header: 'pass', cell: (r) => (r.pass === null ? '' : r.pass ? 'yes' : 'NO') },
];

function ratioCell(ratio: number | null | undefined): string {
  return ratio === null || ratio === undefined ? '–' : `${ratio.toFixed(2)}×`;
}

/** Whether ours beat the peer on a peer row, in words. */
export function versusPeer(r: BenchResult): string {
  if (!r.peer) return '';
  return oursFaster(r.value, r.peer.value, r.unit) ? 'faster' : 'SLOWER';
}

const PEER_COLUMNS: ReadonlyArray<Column<BenchResult>> = [
  { header: 'backend', cell: (r) => r.backend },
  { header: 'metric', cell: (r) => r.metric },
  { header: 'ours', cell: (r) => withUnit(r.value, r.unit), align: 'right' },
  { header: 'peer', cell: (r) => withUnit(r.peer?.value ?? null, r.unit), align: 'right' },
  { header: 'raw@ours', cell: (r) => withUnit(r.raw, r.unit), align: 'right' },
  {
    header: 'raw@peer',
    cell: (r) => withUnit(r.peer?.rawAtPeerDurability ?? null, r.unit),
    align: 'right',
  },
  { header: '÷peer', cell: (r) => ratioCell(r.peer?.ratio), align: 'right' },
  { header: '÷raw@ours', cell: (r) => ratioCell(r.ratio), align: 'right' },
  { header: '÷raw@peer', cell: (r) => ratioCell(r.peer?.ratioAtPeerDurability), align: 'right' },
  { header: 'vs peer', cell: versusPeer },
];

/**
 * The tables printed at the end of a run: every workload against its raw
 * baseline, then, when the SDK was there, the peer comparison (ours, the
 * SDK's store, raw at our durability, raw at the peer's; ratios are ours ÷
 * theirs in the row's unit).
 */
export function renderResults(results: readonly BenchResult[]): string {
  const peerRows = results.filter((r) => r.peer !== undefined);
  const table = renderTable(
    COLUMNS,
    results.filter((r) => r.peer === undefined),
  );
  if (peerRows.length === 0) return table;
  return `${table}\n\npeer comparison (ratios: ours ÷ theirs; for ms below 1 is faster, for /s above 1)\n${renderTable(PEER_COLUMNS, peerRows)}`;
}

/** Each backend's durability, and the peer's, once: the rows carry them too. */
function durabilityLines(results: readonly BenchResult[]): string[] {
  const seen = new Map<string, string>();
  for (const r of results) {
    if (!r.durability) continue;
    const { store, raw, peer, rawPeer } = r.durability;
    seen.set(`${r.backend} store`, store);
    if (raw !== null) seen.set(`${r.backend} raw@ours`, raw);
    if (peer !== undefined) seen.set(`${r.backend} peer (${r.peer?.store})`, peer);
    if (rawPeer !== undefined) seen.set(`${r.backend} raw@peer`, rawPeer);
  }
  return [...seen].map(([side, text]) => `durability, ${side}: ${text}`);
}

/** The lines under the table: machine, skips, errors and misses. */
export function renderSummary(report: BenchReport): string {
  const { machine } = report;
  const lines = [
    `${report.profile.name} run, ${report.durationSeconds.toFixed(0)} s, ${report.date}`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}, ` +
      `SQLite ${machine.sqlite}, PostgreSQL ${machine.postgres ?? 'not used'}, fdatasync ${machine.fdatasyncMs} ms`,
    `load average: ${report.loadAverage.atStart.map((n) => n.toFixed(2)).join(' ')} at the start, ` +
      `${report.loadAverage.atEnd.map((n) => n.toFixed(2)).join(' ')} at the end`,
  ];
  lines.push(...durabilityLines(report.results));
  for (const skip of report.skipped) lines.push(`skipped: ${skip.backend} ${skip.workload}: ${skip.reason}`);
  for (const error of report.errors)
    lines.push(`FAILED: ${error.backend} ${error.workload}: ${error.reason}`);
  const slower = report.results.filter((r) => r.peer !== undefined && versusPeer(r) === 'SLOWER');
  if (report.results.some((r) => r.peer !== undefined)) {
    lines.push(
      slower.length === 0
        ? 'faster than the peer on every peer row'
        : `slower than the peer (${slower.length}): ${slower
            .map(
              (r) =>
                `${r.backend} "${r.metric}" ${ratioCell(r.peer!.ratio)} the peer, ${ratioCell(r.ratio)} raw@ours`,
            )
            .join('; ')}`,
    );
  }
  const misses = report.results.filter((r) => r.pass === false);
  lines.push(
    misses.length === 0
      ? 'every target with a verdict passed'
      : `targets missed (${misses.length}): ${misses.map((r) => `${r.backend} ${r.workload} "${r.metric}"`).join('; ')}`,
  );
  return lines.join('\n');
}

/** Writes the report as JSON (creating the directory), replacing the file in one step. */
export function writeReport(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  // A run stopped while writing must not leave a truncated latest.json behind.
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(temporary, path);
}
