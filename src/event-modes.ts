import { ConfigError } from './errors.js';

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

/**
 * The error for an agent whose events live in the other mode: it names both
 * modes and the two ways out, the setting and the command that moves events.
 */
export function eventModeMismatch(
  stored: EventMode,
  ctx: { backend: string; operation: string; agentId: string },
): ConfigError {
  const other: EventMode = stored === 'database' ? 'file' : 'database';
  return new ConfigError(
    `the agent's events are stored ${PLACE[stored]}, but this store keeps events ${PLACE[other].replace(/^in /, 'in ')}; ` +
      `open it with eventStorage '${stored}' (KODE_STORE_EVENTS=${stored}), ` +
      `or move them with \`kode-store events <location> --to ${other}\``,
    { ...ctx, variable: 'KODE_STORE_EVENTS' },
  );
}
