import { afterAll, describe, it } from 'vitest';
import { allKvCases, handWrittenKvCases, runKvConformance } from '../../conformance/kv/index.js';
import { createKvStore } from '../../src/kv/kv-store.js';
import { MemoryKvBackend } from '../../src/kv/memory-kv.js';

// Peers share one MemoryKvBackend: two store objects on one "database".
const backends = new WeakMap<object, MemoryKvBackend>();

runKvConformance(
  {
    name: 'memory',
    async create({ now }) {
      const backend = new MemoryKvBackend();
      const kv = createKvStore(backend, { now });
      backends.set(kv, backend);
      return kv;
    },
    async destroy() {},
    async createPeer(kv, { now }) {
      return createKvStore(backends.get(kv) as MemoryKvBackend, { now });
    },
  },
  { describe, it, afterAll },
);

describe('kv conformance suite size', () => {
  it('has at least 120 hand-written cases and 300 generated query cases', () => {
    const handWritten = handWrittenKvCases().length;
    const generated = allKvCases().length - handWritten;
    if (handWritten < 120 || generated < 300) {
      throw new Error(`${handWritten} hand-written and ${generated} generated cases`);
    }
  });
});
