import { stat } from 'node:fs/promises';
import { createExtendedStore } from '../src/config/create-extended-store.js';
import {
  type ExtendedStoreConfig,
  eventPlacementFromEnv,
  locationBackend,
  locationSyntaxes,
  storeConfigFromEnv,
  storeConfigFromLocation,
} from '../src/config/store-config.js';
import { ConfigError, redactSecrets } from '../src/errors.js';
import type { ReadableAgentStore } from '../src/transfer/export-format.js';
import type { JsonStoreEventOrder } from '../src/transfer/json-store-events.js';
import { JsonStoreReader } from '../src/transfer/json-store-reader.js';
import type { ExtendedStore } from '../src/types.js';

/** How the command line opens a location. */
export interface OpenLocationOptions {
  /** Environment used when no location is given. */
  env: Record<string, string | undefined>;
  /** `json:` locations: skip corrupt files (recorded in `reader.problems`) instead of stopping. */
  skipCorrupt?: boolean;
  /** `json:` locations: how channel logs are merged. */
  eventOrder?: JsonStoreEventOrder;
  /**
   * The store is read, not written (inspect, doctor, export, a migration's
   * source): it is opened read-only, so nothing is created, migrated or
   * written, and a location that holds no kode-store data (a SQLite file that
   * does not exist or has no kode-store schema, a PostgreSQL schema or
   * MongoDB database without one) is a `ConfigError` naming it, so a
   * mistyped location never passes for an empty store.
   */
  readOnly?: boolean;
}

/** A JSONStore directory, opened read-only. */
export interface OpenedJsonLocation {
  kind: 'json';
  /** The location as shown to the user. */
  label: string;
  /** The backend kind, for export headers and messages. */
  backend: 'json';
  reader: JsonStoreReader;
  source: ReadableAgentStore;
  close(): Promise<void>;
}

/** A kode-store backend. */
export interface OpenedStoreLocation {
  kind: 'store';
  label: string;
  backend: string;
  /** Opened read-only: every write rejects. */
  readOnly: boolean;
  store: ExtendedStore;
  source: ReadableAgentStore;
  close(): Promise<void>;
}

export type OpenedLocation = OpenedJsonLocation | OpenedStoreLocation;

const JSON_PREFIX = 'json:';

/** The location as it may be shown: credentials removed. */
export function locationLabel(location: string | undefined): string {
  return location === undefined ? '(environment)' : redactSecrets(location);
}

function parseLocation(location: string): ExtendedStoreConfig {
  // The shared parser does not know json:, which only the command line reads.
  if (locationBackend(location) === undefined) {
    throw new ConfigError(
      `unknown store location ${JSON.stringify(redactSecrets(location))}; use ${[...locationSyntaxes().slice(0, -1), 'json:<dir>'].join(', ')} or ${locationSyntaxes().at(-1)}`,
      { variable: 'location' },
    );
  }
  return storeConfigFromLocation(location);
}

/**
 * A location names the database; hybrid mode comes from the environment
 * (`KODE_STORE_EVENTS=file`, `KODE_STORE_PATH`), as for `createExtendedStore()`,
 * so that the commands read every agent's events where they are.
 */
function withEventPlacement(
  config: ExtendedStoreConfig,
  env: Record<string, string | undefined>,
): ExtendedStoreConfig {
  const placement = eventPlacementFromEnv(env);
  if (config.type === 'memory' || placement.eventStorage === undefined) return config;
  return { ...config, ...placement };
}

/**
 * Opens `json:<dir>` as a read-only `JsonStoreReader`, anything else through
 * `createExtendedStore`, the package's single way from a location (or the
 * environment) to an open store, so both accept exactly the same locations. A bad location is a
 * `ConfigError` (exit code 2) naming what is wrong; so is a `json:` directory
 * that holds no JSONStore data.
 */
export async function openLocation(
  location: string | undefined,
  options: OpenLocationOptions,
): Promise<OpenedLocation> {
  if (location?.startsWith(JSON_PREFIX)) {
    const root = location.slice(JSON_PREFIX.length);
    if (root === '')
      throw new ConfigError('json: needs a directory, e.g. json:./data/store', { variable: 'location' });
    const info = await stat(root).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new ConfigError(`json: ${JSON.stringify(root)} is not a directory`, { variable: 'location' });
    }
    const reader = new JsonStoreReader(root, {
      onCorrupt: options.skipCorrupt ? 'skip' : 'throw',
      eventOrder: options.eventOrder,
    });
    await reader.assertJsonStore();
    return {
      kind: 'json',
      label: location,
      backend: 'json',
      reader,
      source: reader,
      close: () => reader.close(),
    };
  }
  // Parse here rather than in the factory so that "no location" reads the
  // environment the command was given (tests pass their own); a malformed
  // location fails with a ConfigError naming it, before any driver loads.
  const config =
    location === undefined
      ? storeConfigFromEnv(options.env)
      : withEventPlacement(parseLocation(location), options.env);
  const readOnly = options.readOnly ?? false;
  const store = await createExtendedStore({ ...config, readOnly });
  return {
    kind: 'store',
    label: locationLabel(location),
    backend: config.type,
    readOnly,
    store,
    source: store,
    close: () => store.close(),
  };
}
