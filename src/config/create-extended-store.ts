import { ConfigError } from '../errors.js';
import type { KvStore } from '../kv/kv-types.js';
import type { ExtendedStore, StoreCapabilities } from '../types.js';
import { backendOfType } from './backends.js';
import {
  type ExtendedStoreConfig,
  storeConfigFromEnv,
  storeConfigFromLocation,
  validateStoreConfig,
} from './store-config.js';

/**
 * What every store of this package is: the SDK's `ExtendedStore`, plus
 * `open()` (connect and migrate now) and `kv` (the KV namespace API).
 */
export interface KodeStore extends ExtendedStore {
  open(): Promise<this>;
  readonly kv: KvStore;
  readonly capabilities: StoreCapabilities;
}

/**
 * Opens the agent store the configuration names, ready to hand to the SDK as
 * `Agent.create({ store, ... })`.
 *
 * - No argument: the environment decides (`KODE_STORE_TYPE`, `KODE_SQLITE_PATH`,
 *   `KODE_STORE_PATH`, `KODE_STORE_EVENTS`, `DATABASE_URL` / `POSTGRES_*`,
 *   `MONGODB_URI` / `MONGODB_DB`); with nothing set, SQLite at `./data/agents.db`.
 * - A config object: used as given (the environment is not read).
 * - A location string: `sqlite:<path>`, `postgres://…`, `mongodb://…`, `memory:`.
 *
 * The schema is created or migrated before the promise resolves, so a wrong
 * setting or an unreachable server fails here, with a typed error. With
 * `readOnly: true` in the config nothing is created or migrated: the location
 * must already hold a current kode-store (else `ConfigError`, or
 * `UnsupportedError` for an older schema), and writes reject.
 *
 * @example
 * const store = await createExtendedStore();
 * const agent = await Agent.create(config, { store, ... });
 */
export async function createExtendedStore(config?: ExtendedStoreConfig | string): Promise<KodeStore> {
  const resolved =
    config === undefined
      ? storeConfigFromEnv()
      : typeof config === 'string'
        ? storeConfigFromLocation(config)
        : validateStoreConfig(config);
  const store = await openStore(resolved);
  try {
    // Stores open lazily; opening now makes connection and migration
    // problems surface here instead of at the agent's first step.
    await store.open();
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  return store;
}

async function openStore(config: ExtendedStoreConfig): Promise<KodeStore> {
  const backend = backendOfType(config.type);
  if (!backend) {
    throw new ConfigError(`unknown store type ${JSON.stringify((config as { type?: unknown }).type)}`, {
      variable: 'type',
    });
  }
  return backend.open(config as never);
}
