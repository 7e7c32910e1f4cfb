import type { StoreHarness } from '../../conformance/index.js';
import { type MemoryDatabase, MemoryStore } from '../../src/agent/memory-store.js';

/**
 * A conformance harness for MemoryStore or any subclass of it: peers and
 * reopened stores are new objects over the same in-memory database, so the
 * cross-instance and reopen cases run too.
 */
export function memoryHarness(
  name: string,
  make: (database?: MemoryDatabase) => MemoryStore = (database) => new MemoryStore({ database }),
): StoreHarness<MemoryStore> {
  return {
    name,
    create: async () => make(),
    destroy: (store) => store.close(),
    createPeer: async (store) => make(store.database),
    reopen: async (store) => {
      await store.close();
      return make(store.database);
    },
  };
}
