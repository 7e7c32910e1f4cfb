import { ConfigError } from '../errors.js';

/**
 * Where an agent's events live (SPEC §4): rows of the database (database
 * mode) or append-only files under `fileStoreBaseDir` (hybrid mode). The
 * database records it per agent, and a store never reads or appends an
 * agent's events in the other place: a stream split across both would lose
 * its order, and reading only one place silently shows fewer events.
 */
export type EventMode = 'database' | 'file';

const PLACE: Record<EventMode, string> = {
  database: 'in the database (database mode)',
  file: 'in event files (hybrid mode)',
};

/** The other mode. */
export function otherEventMode(mode: EventMode): EventMode {
  return mode === 'database' ? 'file' : 'database';
}

/**
 * What is wrong when an agent's events are stored in `stored` mode and the
 * store keeps them in the other: both modes and the two ways out, the
 * setting and the command that moves events.
 */
export function eventModeProblem(stored: EventMode): string {
  const other = otherEventMode(stored);
  return (
    `the agent's events are stored ${PLACE[stored]}, but this store keeps events ${PLACE[other]}; ` +
    `open it with eventStorage '${stored}' (KODE_STORE_EVENTS=${stored}), ` +
    `or move them with \`kode-store events <location> --to ${other}\``
  );
}

/**
 * An agent's events live in the other mode than the store's. A `ConfigError`
 * (code `KODE_CONFIG`, `variable` `KODE_STORE_EVENTS`): the store's setting
 * does not match the data.
 */
export class EventModeError extends ConfigError {
  /** Where the agent's events are. */
  readonly stored: EventMode;
  constructor(stored: EventMode, ctx: { backend?: string; operation?: string; agentId?: string }) {
    super(eventModeProblem(stored), { ...ctx, variable: 'KODE_STORE_EVENTS' });
    this.stored = stored;
  }
}

/** The error for an agent whose events live in the other mode. */
export function eventModeMismatch(
  stored: EventMode,
  ctx: { backend: string; operation: string; agentId: string },
): EventModeError {
  return new EventModeError(stored, ctx);
}
