import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { type BenchReport, formatNumber } from './report.js';

/**
 * Prints a results file as a Markdown table, for the README's Performance
 * section: `npx tsx bench/markdown-table.ts [bench/results/latest.json]`.
 */

function cell(value: number | null, unit: string): string {
  if (value === null) return '–';
  return unit === '×' ? `${formatNumber(value)}×` : `${formatNumber(value)} ${unit}`;
}

/** One Markdown row per result, in the report's order. */
export function markdownTable(results: readonly BenchResult[]): string {
  const lines = [
    '| backend | workload | metric | value | raw | ratio | target | pass |',
    '| --- | --- | --- | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of results) {
    const pass = r.pass === null ? '' : r.pass ? 'yes' : '**no**';
    const ratio = r.ratio === null ? '–' : `${r.ratio.toFixed(2)}×`;
    const metric = r.metric.replaceAll('|', '\\|');
    lines.push(
      `| ${r.backend} | ${r.workload} | ${metric} | ${cell(r.value, r.unit)} | ${cell(r.raw, r.unit)} | ${ratio} | ${r.target ?? ''} | ${pass} |`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = process.argv[2] ?? fileURLToPath(new URL('./results/latest.json', import.meta.url));
  const report = JSON.parse(readFileSync(path, 'utf8')) as BenchReport;
  process.stdout.write(`${markdownTable(report.results)}\n`);
}
