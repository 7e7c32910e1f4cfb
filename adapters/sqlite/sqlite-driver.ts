import { createRequire } from 'node:module';
import { ConfigError } from '../../src/errors.js';
import type { SqliteDatabaseConstructor } from './sqlite-config.js';

/**
 * Loads better-sqlite3 on first use, so that applications using another
 * backend never need it installed. `require` resolves it the way Node
 * resolves the application's own imports, so the application, the SDK and
 * this store share one copy of SQLite (two copies in one process would not
 * see each other's file locks).
 *
 * @param load how to require a module; tests pass one rooted elsewhere.
 */
export function loadBetterSqlite3(
  load: (id: string) => unknown = createRequire(import.meta.url),
): SqliteDatabaseConstructor {
  let loaded: unknown;
  try {
    loaded = load('better-sqlite3');
  } catch (error) {
    throw new ConfigError(
      'the SQLite store needs the better-sqlite3 package: run `npm install better-sqlite3`',
      { backend: 'sqlite', variable: 'better-sqlite3', cause: error },
    );
  }
  const Database = (loaded as { default?: unknown }).default ?? loaded;
  if (typeof Database !== 'function') {
    throw new ConfigError('better-sqlite3 did not export a Database constructor', {
      backend: 'sqlite',
      variable: 'better-sqlite3',
    });
  }
  return Database as SqliteDatabaseConstructor;
}
