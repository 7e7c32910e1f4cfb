/**
 * The fields `AgentStore` hands a backend with each value (the very
 * functions it calls), for tests that build a backend's documents without a
 * store.
 */
export {
  messageFields as messageFieldsOf,
  toolCallRowFields as toolCallFieldsOf,
} from '../../src/agent/record-fields.js';
export { eventFields as eventFieldsOf } from '../../src/agent/store-codec.js';
