import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { DatabaseEventStorage as PostgresEvents } from '../../adapters/postgres/postgres-database-events.js';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { resolveSqliteOptions } from '../../adapters/sqlite/sqlite-config.js';
import { SqliteConnection } from '../../adapters/sqlite/sqlite-connection.js';
import { DatabaseEventStorage as SqliteEvents } from '../../adapters/sqlite/sqlite-database-events.js';
import { nextPageLimit } from '../../src/agent/paged-iterable.js';
import type { Timeline } from '../../src/types.js';
import { describePostgres, useTestSchema } from '../helpers/postgres.js';

/**
 * `readEvents` pages bounded by bytes as well as by count on PostgreSQL and
 * SQLite (database event mode), sized by the shared `EventPageSizer`: a page
 * ends at the event that brings it to the byte bound, and the next asks for
 * as many events as fit at the previous page's largest. Read here with a
 * small bound (20 000) and page size (50), page by page.
 */

const PAGE_SIZE = 50;
const PAGE_BYTES = 20_000;

const padded = (seq: number, size: number): Timeline =>
  ({
    cursor: seq,
    bookmark: { seq, timestamp: 1 },
    event: { channel: 'monitor', type: 'state_changed', state: 'WORKING', pad: 'p'.repeat(size) },
  }) as unknown as Timeline;

/** Small events, then large ones, then small ones again. */
const SIZES = [
  ...Array.from({ length: 60 }, () => 100),
  ...Array.from({ length: 40 }, () => 3_000),
  ...Array.from({ length: 80 }, () => 100),
];

async function appendAll(store: { appendEvent(id: string, t: Timeline): Promise<void> }, agentId: string) {
  await Promise.all(SIZES.map((size, i) => store.appendEvent(agentId, padded(i + 1, size))));
}

/** Checks the pages of one full read: nothing lost or repeated, every page within its bounds. */
function checkPages(pages: Timeline[][]): void {
  expect(pages.flat().map((entry) => entry.bookmark.seq)).toEqual(SIZES.map((_, i) => i + 1));
  let previous: { events: number; largest: number } | undefined;
  let pagesEndedOnBytes = 0;
  for (const page of pages) {
    const sizes = page.map((entry) => JSON.stringify(entry).length);
    const bytes = sizes.reduce((sum, size) => sum + size, 0);
    const last = sizes[sizes.length - 1] as number;
    // Never more events than asked for, and under the bound until its last event.
    expect(page.length).toBeLessThanOrEqual(nextPageLimit(previous, PAGE_SIZE, PAGE_BYTES));
    expect(bytes - last).toBeLessThan(PAGE_BYTES);
    if (bytes >= PAGE_BYTES) pagesEndedOnBytes++;
    previous = { events: page.length, largest: Math.max(...sizes) };
  }
  // The large events made pages end on bytes, or the test proved nothing.
  expect(pagesEndedOnBytes).toBeGreaterThan(0);
  expect(pages[0]?.length).toBe(16);
}

describe('SQLite readEvents pages', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('end at the byte bound and follow the sizes of the page before', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kode-event-pages-'));
    dirs.push(dir);
    const path = join(dir, 'agents.db');
    const store = new SqliteStore({ path });
    await appendAll(store, 'paged');
    await store.close();

    const connection = new SqliteConnection(resolveSqliteOptions({ path }));
    const pages: Timeline[][] = [];
    for await (const page of new SqliteEvents(connection, PAGE_SIZE, PAGE_BYTES).readPages('paged', {})) {
      pages.push(Array.from({ length: page.length }, (_, i) => page.at(i) as Timeline));
    }
    connection.close();
    checkPages(pages);
  });
});

describePostgres('PostgreSQL readEvents pages', () => {
  const place = useTestSchema('eventpages');

  it('end at the byte bound (cut by the server) and follow the sizes of the page before', async () => {
    const store = new PostgresStore({
      connection: { connectionString: place.url, max: 2, applicationName: 'kode-store-test-event-pages' },
      schema: place.schema,
    });
    try {
      await appendAll(store, 'paged');
      const pages: Timeline[][] = [];
      for await (const page of new PostgresEvents(store.db, PAGE_SIZE, PAGE_BYTES).readPages('paged', {})) {
        pages.push(Array.from({ length: page.length }, (_, i) => page.at(i) as Timeline));
      }
      checkPages(pages);
      // Through the store, with its own bounds, every event comes back once, in order.
      const read: number[] = [];
      for await (const entry of store.readEvents('paged')) read.push(entry.bookmark.seq);
      expect(read).toEqual(SIZES.map((_, i) => i + 1));
    } finally {
      await store.close();
    }
  });
});
