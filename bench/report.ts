import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Column, renderTable } from '../bin/output.js';
import type { BenchProfile } from './bench-profile.js';
import type { BenchResult, SkippedWorkload } from './bench-result.js';
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

/** The one table printed at the end of a run. */
export function renderResults(results: readonly BenchResult[]): string {
  return renderTable(COLUMNS, results);
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
  for (const skip of report.skipped) lines.push(`skipped: ${skip.backend} ${skip.workload}: ${skip.reason}`);
  for (const error of report.errors)
    lines.push(`FAILED: ${error.backend} ${error.workload}: ${error.reason}`);
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
