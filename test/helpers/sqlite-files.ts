import Database from 'better-sqlite3';
import { AGENT_SCHEMA_MIGRATIONS, migrateSchema } from '../../adapters/sqlite/sqlite-schema.js';

/**
 * A SQLite file as an older kode-store left it, for upgrade tests: the
 * agent schema migrated up to `version`, handed back open for the test to
 * fill with rows of that version (the caller closes it).
 */
export function agentSchemaFile(path: string, version: number): Database.Database {
  const db = new Database(path);
  db.exec('BEGIN IMMEDIATE');
  migrateSchema(
    db,
    'agent',
    AGENT_SCHEMA_MIGRATIONS.filter((step) => step.version <= version),
  );
  db.exec('COMMIT');
  return db;
}

/** The agent schema version a file records, read without opening a store. */
export function agentSchemaVersion(path: string): number | undefined {
  const db = new Database(path, { readonly: true });
  try {
    return (
      db.prepare("SELECT version FROM kode_schema_version WHERE component = 'agent'").get() as
        | { version: number }
        | undefined
    )?.version;
  } finally {
    db.close();
  }
}
