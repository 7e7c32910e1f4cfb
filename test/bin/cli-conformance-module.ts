import { MemoryStore } from '../../src/agent/memory-store.js';

/** A store factory, as a custom-backend author would export it for `kode-store conformance`. */
export const createStore = async () => new MemoryStore();
