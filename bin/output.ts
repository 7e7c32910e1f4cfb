import Table from 'cli-table3';
import { type CliIo, writeLine } from './cli-io.js';

/** No separator line between body rows: long listings stay readable. */
const COMPACT = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

/** One column of a human table: a header and how to show a row's cell. */
export interface Column<T> {
  header: string;
  cell: (row: T) => string | number | boolean | undefined;
  align?: 'left' | 'right';
}

/**
 * A plain table (no colours: output is often piped or captured, and escape
 * codes would corrupt it). Cells are single-line previews; `--json` gives the
 * full values.
 */
export function renderTable<T>(columns: ReadonlyArray<Column<T>>, rows: readonly T[]): string {
  const table = new Table({
    head: columns.map((c) => c.header),
    colAligns: columns.map((c) => c.align ?? 'left'),
    style: { head: [], border: [] },
    chars: COMPACT,
  });
  for (const row of rows) table.push(columns.map((c) => c.cell(row) ?? ''));
  return table.toString();
}

/** A two-column key/value table, for one record. */
export function renderKeyValues(entries: ReadonlyArray<readonly [string, unknown]>): string {
  const table = new Table({ style: { head: [], border: [] }, chars: COMPACT });
  for (const [key, value] of entries) {
    table.push({
      [key]: typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value),
    });
  }
  return table.toString();
}

/** One line of at most `max` characters: newlines shown as ⏎, the rest cut with …. */
export function preview(value: unknown, max = 60): string {
  const text = (typeof value === 'string' ? value : (JSON.stringify(value) ?? '')).replace(/\r?\n/g, '⏎');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** An epoch-ms time as ISO, or what was given when it is not a time. */
export function isoTime(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return value === undefined ? '' : String(value);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

/** Prints a value as indented JSON (the `--json` form of every command). */
export function printJson(io: CliIo, value: unknown): Promise<void> {
  return writeLine(io.stdout, JSON.stringify(value, null, 2));
}

/** A page of a longer list, as commands print and return it. */
export interface Page<T> {
  items: T[];
  offset: number;
  limit: number;
  /** All items, when known without reading everything (events are counted only as far as read). */
  total?: number;
  /** More items exist after this page. */
  more: boolean;
}

/** One page of a list already in memory (`limit: 0` = the rest of it). */
export function pageOf<T>(all: T[], options: { limit: number; offset: number }): Page<T> {
  const end = options.limit === 0 ? all.length : options.offset + options.limit;
  return {
    items: all.slice(options.offset, end),
    offset: options.offset,
    limit: options.limit,
    total: all.length,
    more: end < all.length,
  };
}

/** A page as a table with its footer, or (`json`) as JSON with `extra` fields beside the page's. */
export async function printPage<T>(
  io: CliIo,
  page: Page<T>,
  noun: string,
  columns: Column<T>[],
  json: boolean,
  extra: Record<string, unknown> = {},
): Promise<void> {
  if (json) {
    await printJson(io, { ...extra, ...page });
    return;
  }
  if (page.items.length > 0) await writeLine(io.stdout, renderTable(columns, page.items));
  await writeLine(io.stdout, pageFooter(page, noun));
}

/** The line under a paged table saying what was shown and how to see more. */
export function pageFooter(page: Page<unknown>, noun: string): string {
  const of = page.total === undefined ? '' : ` of ${page.total}`;
  if (page.total === 0 || (page.total === undefined && page.items.length === 0 && page.offset === 0)) {
    return `no ${noun}`;
  }
  if (page.items.length === 0) return `no ${noun} at offset ${page.offset}${of}`;
  const last = page.offset + page.items.length;
  const next = page.more ? `; next page: --offset ${last} --limit ${page.limit}` : '';
  return `${noun} ${page.offset + 1}–${last}${of}${next}`;
}
