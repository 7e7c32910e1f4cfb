import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FILE_STORE_PATH,
  DEFAULT_SQLITE_PATH,
  storeConfigFromEnv,
  storeConfigFromLocation,
  validateStoreConfig,
} from '../../src/config/store-config.js';
import { ConfigError } from '../../src/errors.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('KODE_CONFIG');
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('storeConfigFromEnv', () => {
  it('defaults to SQLite at ./data/agents.db with files under ./data/store', () => {
    expect(storeConfigFromEnv({})).toEqual({
      type: 'sqlite',
      dbPath: DEFAULT_SQLITE_PATH,
      fileStoreBaseDir: DEFAULT_FILE_STORE_PATH,
      eventStorage: undefined,
    });
    expect(DEFAULT_SQLITE_PATH).toBe('./data/agents.db');
    expect(DEFAULT_FILE_STORE_PATH).toBe('./data/store');
  });

  it('honours KODE_SQLITE_PATH, KODE_STORE_PATH and KODE_STORE_EVENTS', () => {
    expect(
      storeConfigFromEnv({
        KODE_STORE_TYPE: 'sqlite',
        KODE_SQLITE_PATH: '/tmp/a.db',
        KODE_STORE_PATH: '/tmp/files',
        KODE_STORE_EVENTS: 'file',
      }),
    ).toEqual({ type: 'sqlite', dbPath: '/tmp/a.db', fileStoreBaseDir: '/tmp/files', eventStorage: 'file' });
  });

  it('builds PostgreSQL settings from the POSTGRES_* variables', () => {
    const config = storeConfigFromEnv({
      KODE_STORE_TYPE: 'postgres',
      POSTGRES_HOST: 'db',
      POSTGRES_PORT: '6543',
      POSTGRES_DB: 'kode_agents',
      POSTGRES_USER: 'kode',
      POSTGRES_PASSWORD: 's3cret',
    });
    expect(config).toMatchObject({
      type: 'postgres',
      connection: { host: 'db', port: 6543, database: 'kode_agents', user: 'kode', password: 's3cret' },
    });
  });

  it('takes KODE_POSTGRES_PREPARED_STATEMENTS as true/false (1/0), and nothing else', () => {
    const env = { KODE_STORE_TYPE: 'postgres', DATABASE_URL: 'postgres://u@h/db' };
    expect(storeConfigFromEnv({ ...env, KODE_POSTGRES_PREPARED_STATEMENTS: 'false' })).toMatchObject({
      preparedStatements: false,
    });
    expect(storeConfigFromEnv({ ...env, KODE_POSTGRES_PREPARED_STATEMENTS: '1' })).toMatchObject({
      preparedStatements: true,
    });
    expect(storeConfigFromEnv(env)).toMatchObject({ preparedStatements: undefined });
    expect(() => storeConfigFromEnv({ ...env, KODE_POSTGRES_PREPARED_STATEMENTS: 'off' })).toThrow(
      expect.objectContaining({ code: 'KODE_CONFIG', variable: 'KODE_POSTGRES_PREPARED_STATEMENTS' }),
    );
  });

  it('takes DATABASE_URL for PostgreSQL', () => {
    expect(
      storeConfigFromEnv({ KODE_STORE_TYPE: 'postgres', DATABASE_URL: 'postgres://u@h/db' }),
    ).toMatchObject({
      type: 'postgres',
      connection: 'postgres://u@h/db',
    });
  });

  it('takes MONGODB_URI and MONGODB_DB for MongoDB', () => {
    expect(
      storeConfigFromEnv({ KODE_STORE_TYPE: 'mongo', MONGODB_URI: 'mongodb://h:27017', MONGODB_DB: 'kode' }),
    ).toMatchObject({ type: 'mongo', uri: 'mongodb://h:27017', dbName: 'kode' });
  });

  it.each([
    [{ KODE_STORE_TYPE: 'redis' }, 'KODE_STORE_TYPE'],
    [{ KODE_STORE_TYPE: 'postgres' }, 'POSTGRES_HOST'],
    [{ KODE_STORE_TYPE: 'postgres', POSTGRES_HOST: 'h', POSTGRES_PORT: 'abc' }, 'POSTGRES_PORT'],
    [{ KODE_STORE_TYPE: 'postgres', POSTGRES_HOST: 'h', POSTGRES_PORT: '1e3' }, 'POSTGRES_PORT'],
    [{ KODE_STORE_TYPE: 'postgres', POSTGRES_HOST: 'h', POSTGRES_PORT: '70000' }, 'POSTGRES_PORT'],
    [{ KODE_STORE_TYPE: 'postgres', POSTGRES_HOST: 'h', DATABASE_URL: 'postgres://h/db' }, 'DATABASE_URL'],
    [{ KODE_STORE_TYPE: 'postgres', DATABASE_URL: 'mysql://h/db' }, 'DATABASE_URL'],
    [{ KODE_STORE_TYPE: 'mongo' }, 'MONGODB_URI'],
    [{ KODE_STORE_TYPE: 'mongo', MONGODB_URI: 'http://x' }, 'MONGODB_URI'],
    [{ KODE_STORE_EVENTS: 'disk' }, 'KODE_STORE_EVENTS'],
  ])('refuses %j naming %s', (env, variable) => {
    const error = configError(() => storeConfigFromEnv(env));
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
  });

  it('never puts a password into an error message', () => {
    const error = configError(() =>
      storeConfigFromEnv({ KODE_STORE_TYPE: 'postgres', POSTGRES_PASSWORD: 'hunter2', POSTGRES_PORT: 'x' }),
    );
    expect(error.message).not.toContain('hunter2');
  });
});

describe('storeConfigFromLocation', () => {
  it.each([
    ['sqlite:./x.db', { type: 'sqlite', dbPath: './x.db' }],
    ['postgres://u@h:5432/db', { type: 'postgres', connection: 'postgres://u@h:5432/db' }],
    ['postgresql://h/db', { type: 'postgres', connection: 'postgresql://h/db' }],
    [
      'postgres://u:p%40ss@h:5432/db?schema=kode_a&sslmode=disable',
      { type: 'postgres', connection: 'postgres://u:p%40ss@h:5432/db?sslmode=disable', schema: 'kode_a' },
    ],
    ['postgres://h/db?schema=k%C3%A9', { type: 'postgres', connection: 'postgres://h/db', schema: 'ké' }],
    ['mongodb://h:27017/db', { type: 'mongo', uri: 'mongodb://h:27017/db' }],
    ['mongodb+srv://cluster/db', { type: 'mongo', uri: 'mongodb+srv://cluster/db' }],
    ['memory:', { type: 'memory' }],
  ])('parses %s', (location, expected) => {
    expect(storeConfigFromLocation(location)).toEqual(expected);
  });

  it.each(['', 'sqlite:', 'ftp://x', 'agents.db', 'postgres://h/db?schema='])('refuses %j', (location) => {
    expect(configError(() => storeConfigFromLocation(location)).variable).toBe('location');
  });
});

describe('validateStoreConfig', () => {
  it.each([
    [{ type: 'oracle' }, 'type'],
    [{ type: 'postgres' }, 'connection'],
    [{ type: 'mongo' }, 'uri'],
    [{ type: 'sqlite', dbPath: '' }, 'dbPath'],
    [{ type: 'sqlite', eventStorage: 'cloud' }, 'eventStorage'],
  ])('refuses %j naming %s', (config, variable) => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed input
    expect(configError(() => validateStoreConfig(config as any)).variable).toBe(variable);
  });
});
