import { ConfigError, CorruptDataError } from '../errors.js';
import type { EventMode } from '../hybrid/event-modes.js';
import { FileEventLog } from '../hybrid/file-event-log.js';
import { encodeJson } from '../json-codec.js';

/**
 * Moving an agent's events between the two modes (`kode-store events`): the
 * database's `events` rows and hybrid mode's files. The file side is the
 * shared `FileEventLog`; each backend provides the database side.
 * @internal
 */
export interface EventRowAccess {
  /** Agents with event rows, in code-point order. */
  agentsWithRows(): Promise<string[]>;
  /** The agent's rows as stored JSON text, in append order, a page at a time. */
  readRows(agentId: string): AsyncIterable<string[]>;
  /** Appends rows after the agent's existing ones, in order, in one transaction. */
  insertRows(agentId: string, lines: readonly string[]): Promise<void>;
  deleteRows(agentId: string): Promise<void>;
  /** What the registry records: `file`, `database`, or undefined for an agent it does not know. */
  recordedMode(agentId: string): Promise<EventMode | undefined>;
  /** Records where the agent's events live now (registering the agent if need be). */
  recordMode(agentId: string, mode: EventMode): Promise<void>;
}

/** A store that can move its events between modes. @internal */
export interface EventModeMovable {
  eventRows(): EventRowAccess;
}

export function canMoveEvents(store: unknown): store is EventModeMovable {
  return typeof (store as Partial<EventModeMovable> | null)?.eventRows === 'function';
}

/** What happened to one agent. */
export interface MovedAgent {
  agentId: string;
  /** Events copied to the target (0 when an earlier, interrupted run had copied them). */
  events: number;
  /** `moved`; `finished` when an earlier run had moved them and only the source copy was left. */
  outcome: 'moved' | 'finished';
}

export interface MoveEventsOptions {
  /** Where events go. */
  to: EventMode;
  /** The hybrid mode's base directory (the files read or written). */
  fileStoreBaseDir: string;
  /** Only these agents (default: every agent with events in the other mode). */
  agentIds?: readonly string[];
  /** fdatasync every file batch (default true). */
  fsync?: boolean;
  onAgent?: (moved: MovedAgent, index: number, total: number) => void | Promise<void>;
  onEvents?: (count: number) => void;
}

/** Normalised text of a stored timeline line, so file and row copies compare equal when their values do. */
function normalise(line: string, agentId: string): string {
  return encodeJson(JSON.parse(line) as unknown, 'event', {
    operation: 'moveEvents',
    agentId,
    what: 'timeline',
  });
}

/**
 * Moves events agent by agent. For each: the target's copy is cleared (an
 * interrupted run may have left part of one), the source is copied page by
 * page, the copy is read back and compared entry by entry, the registry is
 * switched to the target (the commit point), and only then is the source
 * removed. Re-running after a crash finishes what was started: an agent
 * already switched only has its source copy removed. Run it while no
 * application writes to the store: an event appended in the old mode during
 * the copy would be refused after the switch, never split.
 */
export async function moveEvents(rows: EventRowAccess, options: MoveEventsOptions): Promise<MovedAgent[]> {
  const log = new FileEventLog({ baseDir: options.fileStoreBaseDir, fsync: options.fsync ?? true });
  const from: EventMode = options.to === 'file' ? 'database' : 'file';
  const side = {
    database: {
      agents: () => rows.agentsWithRows(),
      read: (agentId: string) => rows.readRows(agentId),
      write: (agentId: string, lines: readonly string[]) => rows.insertRows(agentId, lines),
      clear: (agentId: string) => rows.deleteRows(agentId),
    },
    file: {
      agents: () => log.listAgentIds(),
      read: (agentId: string) => fileLines(log, agentId),
      write: async (agentId: string, lines: readonly string[]) => {
        await Promise.all(lines.map((line) => log.appendEncoded(agentId, line)));
      },
      clear: (agentId: string) => log.delete(agentId),
    },
  } as const;
  const moved: MovedAgent[] = [];
  try {
    const agents = options.agentIds ? [...options.agentIds] : await side[from].agents();
    for (const [index, agentId] of agents.entries()) {
      let result: MovedAgent;
      if ((await rows.recordedMode(agentId)) === options.to) {
        // Switched by an earlier run that stopped before removing the source.
        await side[from].clear(agentId);
        result = { agentId, events: 0, outcome: 'finished' };
      } else {
        await side[options.to].clear(agentId);
        let events = 0;
        for await (const page of side[from].read(agentId)) {
          await side[options.to].write(agentId, page);
          events += page.length;
          options.onEvents?.(page.length);
        }
        await verifyCopy(side[from].read(agentId), side[options.to].read(agentId), agentId, options.to);
        await rows.recordMode(agentId, options.to);
        await side[from].clear(agentId);
        result = { agentId, events, outcome: 'moved' };
      }
      moved.push(result);
      await options.onAgent?.(result, index, agents.length);
    }
  } finally {
    await log.close();
  }
  return moved;
}

/** The agent's file entries as JSON lines, a chunk at a time. */
async function* fileLines(log: FileEventLog, agentId: string): AsyncIterable<string[]> {
  for await (const page of log.readPages(agentId)) {
    yield page.map((entry) =>
      encodeJson(entry, 'event', { operation: 'moveEvents', agentId, what: 'timeline' }),
    );
  }
}

async function* entries(pages: AsyncIterable<string[]>): AsyncIterable<string> {
  for await (const page of pages) yield* page;
}

/** Reads both copies side by side; any difference stops the move before the registry is switched. */
async function verifyCopy(
  source: AsyncIterable<string[]>,
  target: AsyncIterable<string[]>,
  agentId: string,
  to: EventMode,
): Promise<void> {
  const a = entries(source)[Symbol.asyncIterator]();
  const b = entries(target)[Symbol.asyncIterator]();
  for (let n = 0; ; n++) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (x.done && y.done) return;
    if (
      x.done !== y.done ||
      normalise(x.value as string, agentId) !== normalise(y.value as string, agentId)
    ) {
      await Promise.all([a.return?.(), b.return?.()]);
      throw new CorruptDataError(
        `the copy of the agent's events in ${to === 'file' ? 'files' : 'the database'} differs from the source at entry ${n}; nothing was switched or removed`,
        { operation: 'moveEvents', agentId },
      );
    }
  }
}

/** The `ConfigError` for a store that cannot move events (memory, or a backend without the database side). */
export function cannotMoveEvents(backend: string): ConfigError {
  return new ConfigError(`the ${backend} store keeps no events in files, so there is nothing to move`, {
    backend,
    operation: 'moveEvents',
    variable: 'location',
  });
}
