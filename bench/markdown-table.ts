import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { type BenchReport, formatNumber, versusPeer } from './report.js';

/**
 * Prints a results file as Markdown tables, for the README's Performance
 * section: `npx tsx bench/markdown-table.ts [bench/results/latest.json]`
 * (the peer comparison's rows, when there are any, as a table of their own).
 */

function cell(value: number | null, unit: string): string {
  if (value === null) return '–';
  return unit === '×' ? `${formatNumber(value)}×` : `${formatNumber(value)} ${unit}`;
}

function ratio(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : `${value.toFixed(2)}×`;
}

/** One Markdown row per result of the peer comparison: ours, the SDK's store, both raw baselines, ours ÷ each. */
export function peerMarkdownTable(results: readonly BenchResult[]): string {
  const lines = [
    '| backend | metric | ours | peer | raw@ours | raw@peer | ÷peer | ÷raw@ours | ÷raw@peer | vs peer |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of results) {
    if (!r.peer) continue;
    const verdict = versusPeer(r) === 'SLOWER' ? '**slower**' : 'faster';
    lines.push(
      `| ${r.backend} | ${r.metric.replaceAll('|', '\\|')} | ${cell(r.value, r.unit)} | ${cell(r.peer.value, r.unit)} | ` +
        `${cell(r.raw, r.unit)} | ${cell(r.peer.rawAtPeerDurability, r.unit)} | ${ratio(r.peer.ratio)} | ` +
        `${ratio(r.ratio)} | ${ratio(r.peer.ratioAtPeerDurability)} | ${verdict} |`,
    );
  }
  return lines.join('\n');
}

/** One Markdown row per result, in the report's order (the peer comparison's rows are in `peerMarkdownTable`). */
export function markdownTable(results: readonly BenchResult[]): string {
  const lines = [
    '| backend | workload | metric | value | raw | ratio | target | pass |',
    '| --- | --- | --- | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of results) {
    if (r.peer) continue;
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
  const main = report.results.filter((r) => !r.peer);
  const peer = report.results.filter((r) => r.peer);
  if (main.length > 0) process.stdout.write(`${markdownTable(main)}\n`);
  if (peer.length > 0) process.stdout.write(`${main.length > 0 ? '\n' : ''}${peerMarkdownTable(peer)}\n`);
}
