import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import { DatabaseEventStorage } from '../../../adapters/postgres/postgres-database-events.js';
import { BUFFERED_PAGE_BYTES, type Page } from '../../../src/agent/paged-iterable.js';
import { CorruptDataError } from '../../../src/errors.js';
import type { Timeline } from '../../../src/types.js';
import { describePostgres, useTestSchema } from '../../helpers/postgres.js';

/**
 * What bounds the memory of PostgreSQL's `readEvents` (issue 21: 1,000,000
 * events of ~1.5 KB read in less than 64 MiB of RSS growth; bench
 * h-event-memory): a page holds at most BUFFERED_PAGE_BYTES of JSON (2 MiB,
 * not the 4 MiB of EVENT_PAGE_BYTES), kept as bytes outside the JavaScript
 * heap, and its events are parsed one at a time as they are handed out.
 * Seen from outside: the events of a page before a corrupt one are handed
 * out, then the read fails at the corrupt one.
 */

const EVENTS = 40;
/** In the second page (the first holds 16 events), not at its start. */
const CORRUPT_SEQ = 20;
/** Events of ~1.5 KB (issue 21's size), enough for pages of 2 MiB to end on bytes. */
const LARGE_EVENTS = 4_000;

const entry = (seq: number, text = `chunk ${seq} 审查 ✅ 😀`): Timeline =>
  ({
    cursor: seq,
    bookmark: { seq, timestamp: 1 },
    event: { channel: 'progress', type: 'text_chunk', step: seq, delta: text },
  }) as unknown as Timeline;

/** The seqs handed out before the read failed, and its error. */
async function readUntilError(
  store: PostgresStore,
  agentId: string,
): Promise<{ seqs: number[]; error: unknown }> {
  const seqs: number[] = [];
  try {
    for await (const event of store.readEvents(agentId)) seqs.push(event.bookmark.seq);
  } catch (error) {
    return { seqs, error };
  }
  return { seqs, error: undefined };
}

describePostgres('PostgreSQL readEvents pages: bounded for a driver that hands them over whole', () => {
  const place = useTestSchema('eventdecoding');
  let store: PostgresStore;

  beforeAll(async () => {
    store = new PostgresStore({
      connection: { connectionString: place.url, max: 2, applicationName: 'kode-store-test-event-decoding' },
      schema: place.schema,
    });
    for (const agentId of ['intact', 'broken']) {
      await Promise.all(Array.from({ length: EVENTS }, (_, i) => store.appendEvent(agentId, entry(i + 1))));
    }
    const text = 'streamed text 审查 ✅ '.repeat(70);
    await Promise.all(
      Array.from({ length: LARGE_EVENTS }, (_, i) => store.appendEvent('large', entry(i + 1, text))),
    );
    await store.db.query(
      `UPDATE ${store.db.table('kode_events')} SET timeline_json = '{"cursor": 20, "bookm' WHERE agent_id = $1 AND seq = $2`,
      ['broken', CORRUPT_SEQ],
    );
  }, 60_000);
  afterAll(async () => {
    await store?.close();
  });

  it('hand out every event of an intact stream, in order, non-BMP text included', async () => {
    const read: Timeline[] = [];
    for await (const event of store.readEvents('intact')) read.push(event);
    expect(read).toEqual(Array.from({ length: EVENTS }, (_, i) => entry(i + 1)));
  });

  it('hand out the events of a page before a corrupt one, then fail with CorruptDataError', async () => {
    const { seqs, error } = await readUntilError(store, 'broken');
    expect(seqs).toEqual(Array.from({ length: CORRUPT_SEQ - 1 }, (_, i) => i + 1));
    expect(error).toBeInstanceOf(CorruptDataError);
  });

  it('refuse to read a page after the next one was fetched into its buffer, instead of handing out other events', async () => {
    const pages: Page<Timeline>[] = [];
    for await (const page of new DatabaseEventStorage(store.db).readPages('large', {})) pages.push(page);
    expect(pages.length).toBeGreaterThan(2);
    expect(() => pages[0]?.at(0)).toThrow(/after the next one was started/);
    // The last page is still the current one.
    expect(pages[pages.length - 1]?.at(0)?.bookmark.seq).toBeGreaterThan(1);
  });

  it('hold at most BUFFERED_PAGE_BYTES of JSON, by default', async () => {
    const sizes: number[][] = [];
    for await (const page of new DatabaseEventStorage(store.db).readPages('large', {})) {
      const texts: number[] = [];
      for (let i = 0; i < page.length; i++) texts.push(Buffer.byteLength(JSON.stringify(page.at(i))));
      sizes.push(texts);
    }
    expect(sizes.flat()).toHaveLength(LARGE_EVENTS);
    // A page ends at the event that reaches the bound.
    for (const page of sizes)
      expect(page.slice(0, -1).reduce((sum, size) => sum + size, 0)).toBeLessThan(BUFFERED_PAGE_BYTES);
    // The events filled pages to the bound, or the test proved nothing.
    expect(
      sizes.filter((page) => page.reduce((sum, size) => sum + size, 0) >= BUFFERED_PAGE_BYTES),
    ).not.toHaveLength(0);
  });
});
