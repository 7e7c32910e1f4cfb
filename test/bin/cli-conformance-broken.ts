import type { StoreHarness } from '../../conformance/index.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import type { Message } from '../../src/types.js';

/** A store with a bug (it loses the last message), for `kode-store conformance` to catch. */
class DropsLastMessage extends MemoryStore {
  override async loadMessages(agentId: string): Promise<Message[]> {
    return (await super.loadMessages(agentId)).slice(0, -1);
  }
}

export const harness: StoreHarness<DropsLastMessage> = {
  name: 'drops-last-message',
  create: async () => new DropsLastMessage(),
  destroy: async (store) => {
    await store.close();
  },
};
