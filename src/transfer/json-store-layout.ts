import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { compareCodePoints } from '../strings.js';

/**
 * Where the KODE SDK's `JSONStore` keeps things inside one agent's directory
 * (SDK v2.7, `src/infra/store/json-store.ts`). Paths are relative to the
 * agent directory.
 */
export const JSON_STORE_FILES = {
  info: 'meta.json',
  messages: 'runtime/messages.json',
  /** `{data, timestamp}` written before `messages.json`; newer than it when left behind. */
  messagesWal: 'runtime/messages.wal',
  toolCalls: 'runtime/tool-calls.json',
  toolCallsWal: 'runtime/tool-calls.wal',
  todos: 'runtime/todos.json',
  mediaCache: 'runtime/media-cache.json',
  eventsDir: 'events',
  historyWindowsDir: 'history/windows',
  compressionsDir: 'history/compressions',
  recoveredDir: 'history/recovered',
  snapshotsDir: 'snapshots',
} as const;

/** Sub-directories that hold an agent's own data; any other sub-directory is a nested agent (a fork). */
export const JSON_STORE_DATA_DIRECTORIES: ReadonlySet<string> = new Set([
  'runtime',
  'events',
  'history',
  'snapshots',
]);

/** The directory `AgentPool.gracefulShutdown()` writes its record to. It is not an agent. */
export const POOL_META_ID = '__pool_meta__';

/** One agent found in a JSONStore directory. */
export interface JsonStoreAgentDirectory {
  /** The agent id: the directory path relative to the root, `/`-separated (`agt-X/fork-123`). */
  agentId: string;
  /** Absolute (or root-relative, as given) path of the agent's directory. */
  dir: string;
}

/** What a JSONStore root holds. */
export interface JsonStoreLayout {
  /** Agents sorted by id in code-point order, nested forks included. */
  agents: JsonStoreAgentDirectory[];
  /** The pool record's directory, when `__pool_meta__/` exists. */
  poolMetaDir?: string;
}

async function entriesOf(dir: string) {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    // A directory removed while we walk is simply not there; anything else
    // (permissions, I/O) must surface rather than hide agents.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Dot-entries are tooling (`.git`, `.DS_Store`), never agents the SDK wrote. */
function isHidden(name: string): boolean {
  return name.startsWith('.');
}

async function visit(dir: string, agentId: string, found: JsonStoreAgentDirectory[]): Promise<void> {
  const entries = await entriesOf(dir);
  // A directory is an agent when the SDK wrote something of its own there.
  // One that only contains forks (its own files removed by hand) is walked
  // through but is not itself an agent: inventing an empty agent would be
  // data the SDK never wrote.
  const ownData = entries.some(
    (entry) =>
      (entry.isFile() && entry.name === JSON_STORE_FILES.info) ||
      (entry.isDirectory() && JSON_STORE_DATA_DIRECTORIES.has(entry.name)),
  );
  if (ownData) found.push({ agentId, dir });
  for (const entry of entries) {
    if (!entry.isDirectory() || isHidden(entry.name) || JSON_STORE_DATA_DIRECTORIES.has(entry.name)) continue;
    await visit(join(dir, entry.name), `${agentId}/${entry.name}`, found);
  }
}

/**
 * True when `root` holds what the SDK's JSONStore writes: a `__pool_meta__/`
 * directory, or among its first `sample` directories one with the JSONStore's
 * own files (`meta.json`, `runtime/`, `events/`, ...). Cheap on purpose (a
 * hybrid store asks it once, before its first write). A missing root holds nothing.
 */
export async function holdsJsonStore(root: string, sample = 16): Promise<boolean> {
  let seen = 0;
  let top: Awaited<ReturnType<typeof entriesOf>>;
  try {
    top = await entriesOf(root);
  } catch (error) {
    // Not a directory: no JSONStore (the caller's own use of the path reports it).
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw error;
  }
  for (const entry of top) {
    if (!entry.isDirectory() || isHidden(entry.name)) continue;
    if (entry.name === POOL_META_ID) return true;
    const inside = await entriesOf(join(root, entry.name));
    if (
      inside.some(
        (item) =>
          (item.isFile() && item.name === JSON_STORE_FILES.info) ||
          (item.isDirectory() && JSON_STORE_DATA_DIRECTORIES.has(item.name)),
      )
    ) {
      return true;
    }
    if (++seen >= sample) return false;
  }
  return false;
}

/**
 * Walks a JSONStore root. Every top-level directory except `__pool_meta__`
 * is an agent; inside an agent directory, every sub-directory other than
 * `runtime`, `events`, `history` and `snapshots` is a nested agent (the SDK
 * names forks `<parent>/fork-<ms>`, so they sit inside their parent). The
 * SDK's own `JSONStore.list()` reads only the top level and misses forks.
 * Symbolic links are not followed (a link cycle must not hang a migration).
 */
export async function findJsonStoreAgents(root: string): Promise<JsonStoreLayout> {
  const found: JsonStoreAgentDirectory[] = [];
  let poolMetaDir: string | undefined;
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || isHidden(entry.name)) continue;
    if (entry.name === POOL_META_ID) {
      poolMetaDir = join(root, entry.name);
      continue;
    }
    await visit(join(root, entry.name), entry.name, found);
  }
  found.sort((a, b) => compareCodePoints(a.agentId, b.agentId));
  return poolMetaDir === undefined ? { agents: found } : { agents: found, poolMetaDir };
}
