import { ConfigError } from '../errors.js';
import type { EventStorage } from './store-config.js';

/**
 * Reading settings from environment variables: the rules every backend's
 * variables follow (blank is unset, typed values refused with a
 * `ConfigError` naming the variable), written once.
 */

export type Env = Record<string, string | undefined>;

export const DEFAULT_SQLITE_PATH = './data/agents.db';
export const DEFAULT_FILE_STORE_PATH = './data/store';

/** The variable's trimmed value, or undefined when it is unset or blank. */
export function set(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function eventStorageFrom(env: Env): EventStorage | undefined {
  const value = set(env, 'KODE_STORE_EVENTS');
  if (value === undefined) return undefined;
  if (value === 'file' || value === 'database') return value;
  throw new ConfigError(`KODE_STORE_EVENTS must be 'file' or 'database', got ${JSON.stringify(value)}`, {
    variable: 'KODE_STORE_EVENTS',
  });
}

/**
 * Where the environment puts events: `KODE_STORE_EVENTS` (undefined when
 * unset) and `KODE_STORE_PATH` (default `./data/store`). The command line
 * applies it to a location it is given, as `createExtendedStore()` does.
 */
export function eventPlacementFromEnv(env: Env): { eventStorage?: EventStorage; fileStoreBaseDir: string } {
  return {
    eventStorage: eventStorageFrom(env),
    fileStoreBaseDir: set(env, 'KODE_STORE_PATH') ?? DEFAULT_FILE_STORE_PATH,
  };
}

export function booleanFrom(env: Env, variable: string): boolean | undefined {
  const value = set(env, variable);
  if (value === undefined) return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ConfigError(`${variable} must be true or false, got ${JSON.stringify(value)}`, { variable });
}

/** A whole number of milliseconds >= 1 from `variable`, or undefined when it is not set. */
export function millisecondsFrom(env: Env, variable: string): number | undefined {
  const value = set(env, variable);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new ConfigError(
      `${variable} must be a whole number of milliseconds >= 1, got ${JSON.stringify(value)}`,
      {
        variable,
      },
    );
  }
  return Number(value);
}

/** A whole number >= 0 from `variable`, or undefined when it is not set. */
export function countFrom(env: Env, variable: string): number | undefined {
  const value = set(env, variable);
  if (value === undefined) return undefined;
  // Digits only: Number() would also take '1e3', '0x10' or '-0'.
  if (!/^\d+$/.test(value)) {
    throw new ConfigError(`${variable} must be a whole number, got ${JSON.stringify(value)}`, { variable });
  }
  return Number(value);
}

/** A TCP port from `variable`, or undefined when it is not set. */
export function portFrom(env: Env, variable: string): number | undefined {
  const value = set(env, variable);
  if (value === undefined) return undefined;
  const port = Number(value);
  // Digits only: Number() would also take '1e3', '0x50' or ' 5432 '.
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new ConfigError(`${variable} must be a port number, got ${JSON.stringify(value)}`, { variable });
  }
  return port;
}
