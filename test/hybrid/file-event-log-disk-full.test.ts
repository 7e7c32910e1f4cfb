import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StorageFullError } from '../../src/errors.js';
import { agentDirName } from '../../src/hybrid/agent-path.js';
import { checkDirectoryWritable } from '../../src/hybrid/directory-health.js';
import { EVENTS_FILE_NAME, FileEventLog } from '../../src/hybrid/file-event-log.js';
import { encodeJson } from '../../src/json-codec.js';
import type { Timeline } from '../../src/types.js';
import { SmallDisk, smallDiskUnavailable } from '../helpers/small-disk.js';

/**
 * The hybrid log on a disk that runs full, for real (a small tmpfs): a
 * rejected append is never read back, the error is `StorageFullError`, and
 * the log works again once there is room.
 */

function entry(index: number, padding = 0): Timeline {
  const bookmark = { seq: index, timestamp: 1_795_361_537_000 + index };
  return {
    cursor: index,
    bookmark,
    event: {
      channel: 'progress',
      type: 'text_chunk',
      step: 1,
      delta: `event ${index} ${'p'.repeat(padding)}`,
      bookmark,
    },
  } as Timeline;
}

const encode = (timeline: Timeline) => encodeJson(timeline, 'event');

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe.skipIf(smallDiskUnavailable !== undefined)(
  `FileEventLog on a full disk (${smallDiskUnavailable ?? 'a 512 KiB tmpfs'})`,
  () => {
    let disk: SmallDisk;
    let baseDir: string;
    let run = 0;

    beforeAll(() => {
      disk = SmallDisk.mount(512 * 1024);
    });
    afterAll(() => disk?.unmount());
    beforeEach(() => {
      disk.free();
      baseDir = join(disk.dir, `store-${++run}`);
    });

    const eventsFile = (agentId: string) => join(baseDir, agentDirName(agentId).name, EVENTS_FILE_NAME);

    it('rejects a batch that fills the disk part-way with StorageFullError, and none of it is read back', async () => {
      const log = new FileEventLog({ baseDir });
      await Promise.all(Array.from({ length: 10 }, (_, i) => log.append('agt-1', encode(entry(i)))));
      const sizeBefore = statSync(eventsFile('agt-1')).size;
      disk.fill(8 * 1024);
      // One batch of ~60 KiB: its write stops after the free 8 KiB.
      const failed = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) => log.append('agt-1', encode(entry(100 + i, 300)))),
      );
      for (const outcome of failed) {
        expect(outcome.status).toBe('rejected');
        const error = (outcome as PromiseRejectedResult).reason;
        expect(error).toBeInstanceOf(StorageFullError);
        expect(error).toMatchObject({ code: 'KODE_STORAGE_FULL', operation: 'append', agentId: 'agt-1' });
      }
      expect(statSync(eventsFile('agt-1')).size).toBe(sizeBefore);
      expect(await collect(log.read('agt-1'))).toEqual(Array.from({ length: 10 }, (_, i) => entry(i)));
      expect(await log.check('agt-1')).toEqual([]);

      disk.free();
      await log.append('agt-1', encode(entry(10)));
      expect(await collect(log.read('agt-1'))).toEqual(Array.from({ length: 11 }, (_, i) => entry(i)));
      const other = new FileEventLog({ baseDir });
      expect(await collect(other.read('agt-1'))).toHaveLength(11);
      expect(await other.check('agt-1')).toEqual([]);
      await Promise.all([log.close(), other.close()]);
    });

    it('leaves no agent behind when its first append finds the disk full', async () => {
      const log = new FileEventLog({ baseDir });
      await log.append('agt-1', encode(entry(0)));
      disk.fill();
      const error = await log.append('agt-new', encode(entry(1, 300))).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageFullError);
      expect(await log.has('agt-new')).toBe(false);
      expect(await log.listAgentIds()).toEqual(['agt-1']);
      expect(await collect(log.read('agt-new'))).toEqual([]);
      expect((await log.stats()).files).toBe(1);
      disk.free();
      await log.append('agt-new', encode(entry(2)));
      expect(await collect(log.read('agt-new'))).toEqual([entry(2)]);
      expect(await log.listAgentIds()).toEqual(['agt-1', 'agt-new']);
      await log.close();
    });

    it('cuts a failed batch back to where it began, not to where this log last wrote (another writer appended between)', async () => {
      const log = new FileEventLog({ baseDir });
      await log.append('agt-1', encode(entry(0)));
      disk.fill(4 * 1024);
      const other = new FileEventLog({ baseDir });
      // The other writer appends after this log's last write; then this log's batch fails.
      await other.append('agt-1', encode(entry(1)));
      await expect(log.append('agt-1', encode(entry(2, 20_000)))).rejects.toBeInstanceOf(StorageFullError);
      const read = await collect(other.read('agt-1'));
      expect(read.slice(0, 2)).toEqual([entry(0), entry(1)]);
      expect(read.every((timeline) => timeline.bookmark.seq !== 2)).toBe(true);
      expect(readFileSync(eventsFile('agt-1'), 'utf8')).toContain(encode(entry(1)));
      await Promise.all([log.close(), other.close()]);
    });

    it('reports a full disk as not writable', async () => {
      disk.fill();
      const health = await checkDirectoryWritable(join(disk.dir, 'store'));
      expect(health.writable).toBe(false);
      expect(health.error).toMatch(/no space left|ENOSPC|full/i);
      expect(existsSync(join(disk.dir, 'store'))).toBe(false);
      disk.free();
      expect(await checkDirectoryWritable(join(disk.dir, 'store'))).toEqual({ writable: true });
    });
  },
);
