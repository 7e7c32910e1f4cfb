import { MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import * as mongoEntry from '../../../adapters/mongo/index.js';
import { MongoStore } from '../../../adapters/mongo/index.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_LOCK_LEASE_MS,
  DEFAULT_LOCK_WAIT_TIMEOUT_MS,
  DEFAULT_OPERATION_TIMEOUT_MS,
  databaseNameFromUri,
  type MongoClientLike,
  type MongoStoreOptions,
  resolveMongoStoreOptions,
} from '../../../adapters/mongo/mongo-config.js';
import {
  deploymentFromHello,
  driverLoadError,
  loadMongoDriver,
} from '../../../adapters/mongo/mongo-connection.js';
import {
  AGENT_COLLECTIONS,
  AGENT_INDEXES,
  agentCollectionNames,
} from '../../../adapters/mongo/mongo-schema.js';
import { storeConfigFromEnv } from '../../../src/config/store-config.js';

/** Options, the entry point, driver loading and deployment detection: nothing here needs a server. */

function configError(options: unknown): { code?: string; variable?: string } {
  try {
    resolveMongoStoreOptions(options as MongoStoreOptions);
  } catch (error) {
    return error as { code?: string; variable?: string };
  }
  throw new Error('expected a ConfigError');
}

describe('kode-store/mongo entry point', () => {
  it('exports MongoStore and the option types from source', () => {
    expect(typeof mongoEntry.MongoStore).toBe('function');
    expect(mongoEntry.DEFAULT_COLLECTION_PREFIX).toBe('kode_');
    expect(mongoEntry.AGENT_SCHEMA_VERSION).toBeGreaterThanOrEqual(1);
  });

  it('a real MongoClient is a MongoClientLike, and injecting one connects nothing', () => {
    // Type-checked by tsc: the structural driver types accept the real driver.
    const client: MongoClientLike = new MongoClient('mongodb://127.0.0.1:1/', {
      serverSelectionTimeoutMS: 100,
    });
    const store = new MongoStore({ client, dbName: 'injected' });
    expect(store.options.client).toBe(client);
    expect(store.options.dbName).toBe('injected');
  });
});

describe('resolveMongoStoreOptions', () => {
  it('fills in the defaults', () => {
    expect(resolveMongoStoreOptions({ uri: 'mongodb://localhost:27017' })).toEqual({
      uri: 'mongodb://localhost:27017',
      client: undefined,
      dbName: 'kode',
      collectionPrefix: 'kode_',
      eventStorage: 'database',
      fileStoreBaseDir: undefined,
      lockLeaseMs: DEFAULT_LOCK_LEASE_MS,
      requireTransactions: false,
      clientOptions: {
        serverSelectionTimeoutMS: DEFAULT_CONNECT_TIMEOUT_MS,
        connectTimeoutMS: DEFAULT_CONNECT_TIMEOUT_MS,
        socketTimeoutMS: DEFAULT_OPERATION_TIMEOUT_MS,
      },
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
      operationTimeoutMs: DEFAULT_OPERATION_TIMEOUT_MS,
      lockWaitTimeoutMs: DEFAULT_LOCK_WAIT_TIMEOUT_MS,
      readOnly: false,
    });
  });

  it('takes the database from the URI unless dbName is given', () => {
    expect(resolveMongoStoreOptions({ uri: 'mongodb://h/agents?replicaSet=rs0' }).dbName).toBe('agents');
    expect(resolveMongoStoreOptions({ uri: 'mongodb://h/agents', dbName: 'other' }).dbName).toBe('other');
  });

  it.each([
    [undefined, 'options'],
    [{}, 'uri'],
    [{ uri: '' }, 'uri'],
    [{ uri: 42 }, 'uri'],
    [{ uri: 'mongodb://h', client: new MongoClient('mongodb://127.0.0.1:1') }, 'client'],
    [{ client: {} }, 'client'],
    [{ uri: 'mongodb://h', dbName: 'a.b' }, 'dbName'],
    [{ uri: 'mongodb://h', dbName: 'a b' }, 'dbName'],
    [{ uri: 'mongodb://h', dbName: 'a\u0000b' }, 'dbName'],
    [{ uri: 'mongodb://h', dbName: '' }, 'dbName'],
    [{ uri: 'mongodb://h', dbName: 'x'.repeat(64) }, 'dbName'],
    [{ uri: 'mongodb://h/bad$name' }, 'dbName'],
    [{ uri: 'mongodb://h', collectionPrefix: 'a$' }, 'collectionPrefix'],
    [{ uri: 'mongodb://h', collectionPrefix: 'system.' }, 'collectionPrefix'],
    [{ uri: 'mongodb://h', eventStorage: 'files' }, 'eventStorage'],
    [{ uri: 'mongodb://h', eventStorage: 'file' }, 'fileStoreBaseDir'],
    [{ uri: 'mongodb://h', fileStoreBaseDir: '' }, 'fileStoreBaseDir'],
    [{ uri: 'mongodb://h', lockLeaseMs: 5 }, 'lockLeaseMs'],
    [{ uri: 'mongodb://h', lockLeaseMs: Number.NaN }, 'lockLeaseMs'],
    [{ uri: 'mongodb://h', connectTimeoutMs: 0 }, 'connectTimeoutMs'],
    [{ uri: 'mongodb://h', operationTimeoutMs: 1.5 }, 'operationTimeoutMs'],
    [{ uri: 'mongodb://h', lockWaitTimeoutMs: '5' }, 'lockWaitTimeoutMs'],
  ])('%j is a ConfigError naming %s', (options, variable) => {
    expect(configError(options)).toMatchObject({ code: 'KODE_CONFIG', variable });
  });

  it('bad options never throw from the constructor: every operation, KV ones too, rejects with the ConfigError naming the option', async () => {
    const store = new MongoStore({ uri: 'mongodb://h', eventStorage: 'file' });
    const refused = { code: 'KODE_CONFIG', variable: 'fileStoreBaseDir' };
    await expect(store.open()).rejects.toMatchObject(refused);
    await expect(store.loadMessages('a')).rejects.toMatchObject(refused);
    await expect(
      store.appendEvent('a', { cursor: 1, bookmark: { seq: 1, timestamp: 1 } } as never),
    ).rejects.toMatchObject(refused);
    await expect(store.kv.listInstances()).rejects.toMatchObject(refused);
    await store.close();
  });

  it('keeps the client options it is given for the client it makes', () => {
    const resolved = resolveMongoStoreOptions({ uri: 'mongodb://h', clientOptions: { appName: 'x' } });
    expect(resolved.clientOptions).toMatchObject({ appName: 'x' });
  });

  it('bounds become driver timeouts; a given bound wins, else the URI or client options keep theirs', () => {
    const given = resolveMongoStoreOptions({
      uri: 'mongodb://h/?serverSelectionTimeoutMS=300',
      connectTimeoutMs: 1_000,
      operationTimeoutMs: 2_000,
      lockWaitTimeoutMs: 3_000,
    });
    expect(given.clientOptions).toEqual({
      serverSelectionTimeoutMS: 1_000,
      connectTimeoutMS: 1_000,
      socketTimeoutMS: 2_000,
    });
    expect([given.connectTimeoutMs, given.operationTimeoutMs, given.lockWaitTimeoutMs]).toEqual([
      1_000, 2_000, 3_000,
    ]);
    const preset = resolveMongoStoreOptions({
      uri: 'mongodb://h/?replicaSet=rs0&SERVERSELECTIONTIMEOUTMS=300',
      clientOptions: { socketTimeoutMS: 700 },
    });
    // The URI's value is the driver's to apply (the store names it in errors); the connect timeout follows it.
    expect(preset.clientOptions).toEqual({
      socketTimeoutMS: 700,
      connectTimeoutMS: 300,
    });
    expect([preset.connectTimeoutMs, preset.operationTimeoutMs]).toEqual([300, 700]);
  });
});

describe('databaseNameFromUri', () => {
  it.each([
    ['mongodb://localhost', undefined],
    ['mongodb://localhost/', undefined],
    ['mongodb://localhost:27017/?replicaSet=rs0', undefined],
    ['mongodb://localhost/agents', 'agents'],
    ['mongodb://user:p%40ss@h1:1,h2:2/agents?w=majority', 'agents'],
    ['mongodb+srv://cluster0.example.net/prod?retryWrites=true', 'prod'],
    ['MONGODB://h/Upper', 'Upper'],
    ['mongodb://h/my%2Ddb', 'my-db'],
    ['postgres://h/db', undefined],
  ])('%s -> %s', (uri, expected) => {
    expect(databaseNameFromUri(uri)).toBe(expected);
  });
});

describe('schema as data', () => {
  it('names every collection with the prefix', () => {
    const names = agentCollectionNames('app_');
    expect(Object.values(names)).toEqual(AGENT_COLLECTIONS.map((role) => `app_${role}`));
  });

  it('index names are unique, and the lock collection has a TTL index on expiresAt', () => {
    const all = Object.values(AGENT_INDEXES).flat();
    expect(new Set(all.map((index) => index.name)).size).toBe(all.length);
    expect(AGENT_INDEXES.locks).toEqual([
      { name: 'locks_expiry', key: { expiresAt: 1 }, expireAfterSeconds: 0 },
    ]);
  });

  it('each per-agent list has a unique (agentId, position) index, so no position is ever stored twice', () => {
    for (const role of ['messages', 'tool_calls', 'media_cache', 'history_windows', 'events'] as const) {
      const unique = AGENT_INDEXES[role].find((index) => index.unique);
      expect(Object.keys(unique?.key ?? {})[0], role).toBe('agentId');
    }
  });
});

describe('deployment detection from hello', () => {
  it('a standalone server has no transactions, and the reason says what would', () => {
    const deployment = deploymentFromHello({
      isWritablePrimary: true,
      logicalSessionTimeoutMinutes: 30,
      ok: 1,
    });
    expect(deployment).toMatchObject({ topology: 'standalone', transactions: false });
    expect(deployment.reason).toMatch(/replica set/);
  });

  it('a replica set member and a mongos have transactions', () => {
    expect(deploymentFromHello({ setName: 'rs0', logicalSessionTimeoutMinutes: 30 })).toEqual({
      topology: 'replicaSet',
      transactions: true,
    });
    expect(deploymentFromHello({ msg: 'isdbgrid', logicalSessionTimeoutMinutes: 30 })).toEqual({
      topology: 'sharded',
      transactions: true,
    });
  });

  it('without logical sessions there are no transactions, whatever the topology', () => {
    expect(deploymentFromHello({ setName: 'rs0' })).toMatchObject({ transactions: false });
    expect(deploymentFromHello({ setName: 'rs0', logicalSessionTimeoutMinutes: null })).toMatchObject({
      transactions: false,
    });
  });
});

describe('loading the optional driver', () => {
  it('loads the installed mongodb driver', async () => {
    const driver = await loadMongoDriver();
    expect(driver.MongoClient).toBe(MongoClient);
  });

  it('a missing driver is a ConfigError telling how to install it, with the import error as cause', async () => {
    const error = await loadMongoDriver('kode-store-no-such-driver-package').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'KODE_CONFIG', variable: 'mongodb' });
    expect((error as Error).message).toContain('npm install mongodb');
    expect((error as Error).cause).toMatchObject({ code: expect.stringMatching(/MODULE_NOT_FOUND/) });
  });

  it('a module without MongoClient is a ConfigError; other load failures are not disguised as "not installed"', async () => {
    await expect(loadMongoDriver('node:path')).rejects.toMatchObject({ code: 'KODE_CONFIG' });
    const broken = new SyntaxError('Unexpected token');
    expect(driverLoadError(broken)).toBe(broken);
  });
});

describe('timeouts from the environment', () => {
  const base = { KODE_STORE_TYPE: 'mongo', MONGODB_URI: 'mongodb://h:27017' };

  it('KODE_MONGO_*_TIMEOUT_MS reach the store config as milliseconds', () => {
    expect(
      storeConfigFromEnv({
        ...base,
        KODE_MONGO_CONNECT_TIMEOUT_MS: '1500',
        KODE_MONGO_OPERATION_TIMEOUT_MS: '2500',
        KODE_MONGO_LOCK_WAIT_TIMEOUT_MS: '3500',
      }),
    ).toMatchObject({ connectTimeoutMs: 1_500, operationTimeoutMs: 2_500, lockWaitTimeoutMs: 3_500 });
    expect(storeConfigFromEnv(base)).toMatchObject({
      connectTimeoutMs: undefined,
      operationTimeoutMs: undefined,
      lockWaitTimeoutMs: undefined,
    });
  });

  it.each([
    ['KODE_MONGO_CONNECT_TIMEOUT_MS', '0'],
    ['KODE_MONGO_OPERATION_TIMEOUT_MS', '2s'],
    ['KODE_MONGO_LOCK_WAIT_TIMEOUT_MS', '1e3'],
  ])('%s=%s is a ConfigError naming it', (variable, value) => {
    expect(() => storeConfigFromEnv({ ...base, [variable]: value })).toThrow(
      expect.objectContaining({ code: 'KODE_CONFIG', variable }),
    );
  });
});
