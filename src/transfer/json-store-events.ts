import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compareCodePoints } from '../strings.js';
import type { Timeline } from '../types.js';
import type { JsonStoreProblem } from './json-store-problems.js';

/**
 * How the per-channel logs of one agent are merged into one stream.
 *
 * - `timestamp` (default): by `bookmark.timestamp`, then `bookmark.seq`.
 *   Within one process the SDK stamps seq and timestamp together, so this is
 *   seq order; across a crash and `Agent.resume` the SDK restarts seq at the
 *   last `done` + 1 (and `tool_manual_updated` at 0), and only the timestamp
 *   keeps the resumed session after the one it resumes.
 * - `seq`: by `bookmark.seq`, then `bookmark.timestamp`. Interleaves the two
 *   sessions where seqs were reused; offered for tools that expect seq order.
 *
 * Ties (same keys) keep arrival order: channel `progress`, `control`,
 * `monitor`, then any other channel by name; within a channel the `.log`
 * before the `.wal` (the WAL holds what had not been flushed yet) before a
 * `.wal.corrupted`; within a file, line order.
 */
export type JsonStoreEventOrder = 'timestamp' | 'seq';

const CHANNEL_RANK: Record<string, number> = { progress: 0, control: 1, monitor: 2 };
const FILE_KINDS = ['log', 'wal', 'wal.corrupted'] as const;
const EVENT_FILE = /^(.+)\.(log|wal|wal\.corrupted)$/;

interface EventFile {
  name: string;
  channel: string;
  kind: (typeof FILE_KINDS)[number];
}

function compareEventFiles(a: EventFile, b: EventFile): number {
  const rank = (CHANNEL_RANK[a.channel] ?? 3) - (CHANNEL_RANK[b.channel] ?? 3);
  if (rank !== 0) return rank;
  const channel = compareCodePoints(a.channel, b.channel);
  if (channel !== 0) return channel;
  return FILE_KINDS.indexOf(a.kind) - FILE_KINDS.indexOf(b.kind);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTimeline(value: unknown): value is Timeline {
  if (!isObject(value) || !isObject(value.event) || !isObject(value.bookmark)) return false;
  const { seq, timestamp } = value.bookmark;
  return Number.isFinite(seq) && Number.isFinite(timestamp);
}

function parseTimeline(text: string): Timeline | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isTimeline(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A crash can tear a line mid-write; JSONStore's next append then continues
 * on the same line, so a complete entry may sit behind the torn one. Returns
 * the text of the last complete entry on the line, if there is one.
 */
function salvageGluedEntry(text: string): { text: string; timeline: Timeline } | undefined {
  for (let at = text.indexOf('{"cursor":', 1); at > 0; at = text.indexOf('{"cursor":', at + 1)) {
    const tail = text.slice(at);
    const timeline = parseTimeline(tail);
    if (timeline) return { text: tail, timeline };
  }
  return undefined;
}

/** The merged event stream of one agent, and what was dropped on the way. */
export interface JsonStoreEvents {
  /** Distinct entries in stream order (see `JsonStoreEventOrder`). */
  entries: Timeline[];
  /** Byte-identical lines dropped because an earlier line had the same text. */
  duplicateLines: number;
  /** Files read, in arrival order (relative to the events directory). */
  files: string[];
}

interface Arrival {
  timeline: Timeline;
  arrival: number;
}

/**
 * Reads every `<channel>.log`, leftover `<channel>.wal` (lines JSONStore had
 * not flushed when the process ended; it appends them to the log on its next
 * start) and `<channel>.wal.corrupted` (a WAL it failed to recover) of one
 * agent and merges them into one stream.
 *
 * Duplicates are dropped by whole line text, never by seq: JSONStore writes
 * the same line twice when flushes overlap, and a WAL may repeat lines that
 * reached the log; but the SDK reuses seqs for *different* events after a
 * resume, and those are all kept. A line that is not a complete entry is
 * handed to `report` (which may throw to stop); a complete entry glued behind
 * a torn one on the same line is kept.
 */
export async function readJsonStoreEvents(
  eventsDir: string,
  options: {
    order: JsonStoreEventOrder;
    agentId: string;
    /** Path prefix used in problem reports (the events directory as the user named it). */
    displayDir: string;
    report: (problem: JsonStoreProblem) => void;
  },
): Promise<JsonStoreEvents> {
  let names: string[];
  try {
    names = await readdir(eventsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { entries: [], duplicateLines: 0, files: [] };
    throw error;
  }
  const files: EventFile[] = [];
  for (const name of names) {
    const match = EVENT_FILE.exec(name);
    if (match) files.push({ name, channel: match[1]!, kind: match[2] as EventFile['kind'] });
  }
  files.sort(compareEventFiles);

  const seen = new Set<string>();
  const arrivals: Arrival[] = [];
  let duplicateLines = 0;
  for (const file of files) {
    const path = join(eventsDir, file.name);
    const text = await readFile(path, 'utf8');
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i]!;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.trim() === '') continue;
      if (seen.has(line)) {
        duplicateLines++;
        continue;
      }
      seen.add(line);
      let timeline = parseTimeline(line);
      if (!timeline) {
        const salvaged = salvageGluedEntry(line);
        options.report({
          kind: 'torn-event-line',
          path: join(options.displayDir, file.name),
          agentId: options.agentId,
          line: i + 1,
          message: salvaged
            ? 'torn event entry dropped; the complete entry written after it on the same line was kept'
            : 'not a complete event entry (torn write?); line dropped',
        });
        if (!salvaged || seen.has(salvaged.text)) continue;
        seen.add(salvaged.text);
        timeline = salvaged.timeline;
      }
      arrivals.push({ timeline, arrival: arrivals.length });
    }
  }

  const primary = options.order === 'timestamp' ? 'timestamp' : 'seq';
  const secondary = options.order === 'timestamp' ? 'seq' : 'timestamp';
  arrivals.sort(
    (a, b) =>
      a.timeline.bookmark[primary] - b.timeline.bookmark[primary] ||
      a.timeline.bookmark[secondary] - b.timeline.bookmark[secondary] ||
      a.arrival - b.arrival,
  );
  return {
    entries: arrivals.map((a) => a.timeline),
    duplicateLines,
    files: files.map((f) => f.name),
  };
}
