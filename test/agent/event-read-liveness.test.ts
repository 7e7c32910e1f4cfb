import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import type { ExtendedStore, Timeline } from '../../src/types.js';
import { describePostgres, dropSchema, requirePostgresUrl, uniqueSchemaName } from '../helpers/postgres.js';

/**
 * A server running many agents streams events without pause. Reading one
 * agent's events, or deleting another agent, waits for the appends made
 * before it (read-your-writes), never for the ones other agents keep making:
 * otherwise a busy store starves its readers.
 */

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kode-liveness-'));
  dirs.push(dir);
  return dir;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function entry(seq: number): Timeline {
  return {
    cursor: seq,
    bookmark: { seq, timestamp: seq },
    event: { channel: 'progress', type: 'text_chunk', step: 1, delta: `chunk ${seq}` },
  };
}

/** Appends to `agentId` without pause (a batch of un-awaited appends per tick) until stopped. */
function streamWithoutPause(store: ExtendedStore, agentId: string) {
  let stop = false;
  let sent = 0;
  const failures: unknown[] = [];
  const done = (async () => {
    while (!stop) {
      for (let i = 0; i < 20; i++)
        store.appendEvent(agentId, entry(sent++)).catch((error) => failures.push(error));
      await tick();
    }
  })();
  return {
    get sent() {
      return sent;
    },
    async stop() {
      stop = true;
      await done;
      return failures;
    },
  };
}

/** Runs `operation` while another agent streams; fails if it only finishes after 200,000 more appends. */
async function whileAnotherAgentStreams<T>(store: ExtendedStore, operation: () => Promise<T>): Promise<T> {
  const stream = streamWithoutPause(store, 'busy-agent');
  await tick();
  const start = stream.sent;
  let finished = false;
  const running = operation().finally(() => {
    finished = true;
  });
  while (!finished && stream.sent < start + 200_000) await tick();
  const stoppedAt = stream.sent;
  expect(await stream.stop()).toEqual([]);
  const result = await running;
  expect(finished).toBe(true);
  expect(stoppedAt).toBeLessThan(start + 200_000);
  return result;
}

function livenessCases(name: string, open: () => Promise<ExtendedStore & { close(): Promise<void> }>): void {
  it(`${name}: readEvents of one agent ends while another agent streams without pause`, async () => {
    const store = await open();
    await Promise.all([1, 2, 3].map((seq) => store.appendEvent('quiet-agent', entry(seq))));
    const read = await whileAnotherAgentStreams(store, async () => {
      const entries: Timeline[] = [];
      for await (const e of store.readEvents('quiet-agent')) entries.push(e);
      return entries;
    });
    expect(read.map((e) => e.bookmark.seq)).toEqual([1, 2, 3]);
    await store.close();
  }, 60_000);

  it(`${name}: delete of one agent ends while another agent streams without pause`, async () => {
    const store = await open();
    await store.appendEvent('doomed-agent', entry(1));
    await whileAnotherAgentStreams(store, () => store.delete('doomed-agent'));
    expect(await store.exists('doomed-agent')).toBe(false);
    await store.close();
  }, 60_000);
}

describe('event reads and deletes are not starved by other agents streaming (SQLite)', () => {
  livenessCases('sqlite', async () => new SqliteStore({ path: join(await tempDir(), 'a.db') }).open());
  livenessCases('sqlite hybrid', async () => {
    const dir = await tempDir();
    return new SqliteStore({
      path: join(dir, 'a.db'),
      eventStorage: 'file',
      fileStoreBaseDir: join(dir, 'events'),
    }).open();
  });
});

describePostgres('event reads and deletes are not starved by other agents streaming (PostgreSQL)', () => {
  const schemas: string[] = [];
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(schema);
  });
  const openPostgres = async (hybrid: boolean) => {
    const schema = uniqueSchemaName('liveness');
    schemas.push(schema);
    return new PostgresStore({
      connection: requirePostgresUrl(),
      schema,
      ...(hybrid ? { eventStorage: 'file' as const, fileStoreBaseDir: join(await tempDir(), 'events') } : {}),
    }).open();
  };
  livenessCases('postgres', () => openPostgres(false));
  livenessCases('postgres hybrid', () => openPostgres(true));
});
