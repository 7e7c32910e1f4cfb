import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../adapters/sqlite/index.js';
import { StorageFullError } from '../../../src/errors.js';
import type { Message } from '../../../src/types.js';
import { SmallDisk, smallDiskUnavailable } from '../../helpers/small-disk.js';

/** The SQLite database itself on a disk that runs full (a small tmpfs): typed errors, nothing half-written. */

const message = (text: string): Message => ({ role: 'user', content: [{ type: 'text', text }] });

describe.skipIf(smallDiskUnavailable !== undefined)(
  `SQLite on a full disk (${smallDiskUnavailable ?? 'a 4 MiB tmpfs'})`,
  () => {
    let disk: SmallDisk;
    beforeAll(() => {
      disk = SmallDisk.mount(4 * 1024 * 1024);
    });
    afterAll(() => disk?.unmount());

    it('rejects a save with StorageFullError, keeps what was stored, and saves again once there is room', async () => {
      const store = await new SqliteStore({ path: join(disk.dir, 'agents.db') }).open();
      const before = [message('one'), message('two')];
      await store.saveMessages('agt', before);
      const kv = await store.kv.createInstance({ name: 'full' });
      await store.kv.set(kv.id, 'ns', 'k', 'before');
      disk.fill(16 * 1024);
      const big = [...before, message('x'.repeat(512 * 1024))];
      const error = await store.saveMessages('agt', big).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageFullError);
      expect(error).toMatchObject({ code: 'KODE_STORAGE_FULL', operation: 'saveMessages', agentId: 'agt' });
      await expect(store.kv.set(kv.id, 'ns', 'k', 'y'.repeat(512 * 1024))).rejects.toMatchObject({
        code: 'KODE_STORAGE_FULL',
      });
      expect(await store.loadMessages('agt')).toEqual(before);
      expect((await store.kv.get(kv.id, 'ns', 'k')).value).toBe('before');
      disk.free();
      await store.saveMessages('agt', big);
      expect(await store.loadMessages('agt')).toEqual(big);
      expect(await store.checkConsistency('agt')).toMatchObject({ consistent: true });
      await store.close();
    });
  },
);
