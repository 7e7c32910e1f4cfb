import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import type { Timeline } from '../../../src/types.js';

/**
 * SQLite's readEvents reads the texts of a page of large events as blobs,
 * their stored bytes, into the page (sqlite-database-events.ts): only when
 * the database keeps text as UTF-8, which is fixed when the file is made. A
 * file made with another text encoding must read back the same events.
 */

/**
 * The first page's 16 small events are read as text; the next page, of up to
 * 4 MiB, as text too (the page before it held small events); the pages
 * after it, of ~1.6 KB events, as blobs in a UTF-8 file.
 */
const entry = (seq: number): Timeline =>
  ({
    cursor: seq,
    bookmark: { seq, timestamp: 1 },
    event: {
      channel: 'progress',
      type: 'text_chunk',
      step: seq,
      delta: `chunk ${seq} ${'审查 ✅ 😀 é '.repeat(seq <= 16 ? 1 : 80)}`,
    },
  }) as unknown as Timeline;

describe('SQLite readEvents: event texts read as text or as bytes', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kode-sqlite-events-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const encoding of ['UTF-8', 'UTF-16le', 'UTF-16be'] as const) {
    it(`read back every event, multi-byte and non-BMP text included, from a ${encoding} database`, async () => {
      const path = join(root, 'agents.db');
      // The encoding is fixed by the first write to an empty file.
      const made = new Database(path);
      made.pragma(`encoding = '${encoding}'`);
      made.exec('CREATE TABLE made_elsewhere (x)');
      made.close();

      const store = new SqliteStore({ path });
      try {
        // ~6 MiB past the first page: two more pages at least (a page holds at most 4 MiB).
        const written = Array.from({ length: 6_000 }, (_, i) => entry(i + 1));
        await Promise.all(written.map((event) => store.appendEvent('agent', event)));
        const read: Timeline[] = [];
        for await (const event of store.readEvents('agent')) read.push(event);
        expect(read).toEqual(written);
      } finally {
        await store.close();
      }
      const check = new Database(path, { readonly: true });
      expect(check.pragma('encoding', { simple: true })).toBe(encoding);
      check.close();
    });
  }
});
