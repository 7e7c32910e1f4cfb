import type { StoreCapabilities } from '../types.js';
import { type AgentBackend, hasRetention } from './agent-backend.js';

/** The capabilities a backend declares: `retention` is decided by `AgentStore` from the backend's methods. */
type BackendCapability = Exclude<keyof StoreCapabilities, 'reasons' | 'retention'>;

/**
 * A backend's capabilities, each `true` or the reason it is missing: a
 * `false` without a reason cannot be written, so skip messages and
 * `kode-store doctor` always have one to show.
 *
 * @example
 * describeCapabilities({ crossInstanceLocks: true, durable: inMemory ? 'lost when closed' : true, ... })
 */
export function describeCapabilities(answers: Record<BackendCapability, true | string>): StoreCapabilities {
  const flags: Partial<Record<BackendCapability, boolean>> = {};
  const reasons: NonNullable<StoreCapabilities['reasons']> = {};
  for (const [name, answer] of Object.entries(answers) as Array<[BackendCapability, true | string]>) {
    flags[name] = answer === true;
    if (answer !== true) reasons[name] = answer;
  }
  return { ...(flags as Record<BackendCapability, boolean>), reasons };
}

/** What a store over `backend` guarantees: the backend's own capabilities, and whether it has retention. */
export function storeCapabilities(backend: AgentBackend): StoreCapabilities {
  const capabilities = backend.capabilities;
  if (hasRetention(backend)) return { ...capabilities, retention: true };
  return {
    ...capabilities,
    retention: false,
    reasons: { ...capabilities.reasons, retention: `${backend.name} has no prune() or compact() yet` },
  };
}
