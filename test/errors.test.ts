import { describe, expect, it } from 'vitest';
import { classifyMongoError, wrapMongoError } from '../adapters/mongo/mongo-errors.js';
import { MongoKvBackend } from '../adapters/mongo/mongo-kv.js';
import { wrapPostgresError } from '../adapters/postgres/postgres-errors.js';
import { wrapSqliteError } from '../adapters/sqlite/sqlite-errors.js';
import {
  BusyError,
  ConnectionError,
  CorruptDataError,
  KodeStoreError,
  StorageFullError,
  TimeoutError,
  wrapDriverError,
} from '../src/index.js';

function driverError(code: string, message = `failed with ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

// The core reads the operating system's codes; each adapter reads its driver's first.
const postgresBounds = { connectTimeoutMs: 1, statementTimeoutMs: 1, lockTimeoutMs: 1, fromPool: false };
const wrapPostgres = (error: unknown, ctx: object) => wrapPostgresError(error, ctx, postgresBounds);

describe("wrapDriverError and the adapters' readings", () => {
  it.each([
    ['ENOSPC', wrapDriverError, StorageFullError, 'KODE_STORAGE_FULL'],
    ['SQLITE_FULL', wrapSqliteError, StorageFullError, 'KODE_STORAGE_FULL'],
    ['53100', wrapPostgres, StorageFullError, 'KODE_STORAGE_FULL'],
    ['SQLITE_BUSY', wrapSqliteError, BusyError, 'KODE_BUSY'],
    ['SQLITE_BUSY_SNAPSHOT', wrapSqliteError, BusyError, 'KODE_BUSY'],
    ['SQLITE_NOTADB', wrapSqliteError, CorruptDataError, 'KODE_CORRUPT'],
    ['SQLITE_CORRUPT', wrapSqliteError, CorruptDataError, 'KODE_CORRUPT'],
    ['ECONNRESET', wrapDriverError, ConnectionError, 'KODE_CONNECTION'],
    ['57P01', wrapPostgres, ConnectionError, 'KODE_CONNECTION'],
  ])('gives a %s driver error its own class', (code, wrap, type, stable) => {
    const cause = driverError(code);
    const wrapped = wrap(cause, { backend: 'sqlite', operation: 'saveMessages', agentId: 'a' });
    expect(wrapped).toBeInstanceOf(type);
    expect(wrapped).toMatchObject({
      code: stable,
      backend: 'sqlite',
      operation: 'saveMessages',
      agentId: 'a',
      cause,
    });
    expect(wrapped.name).toBe(type.name);
  });

  it('leaves driver codes to the adapters: the core reads SQLITE_BUSY and 57P01 as plain errors', () => {
    for (const code of ['SQLITE_BUSY', '57P01', '53100']) {
      expect(wrapDriverError(driverError(code), {}).constructor).toBe(KodeStoreError);
    }
  });

  it.each([
    'MongoNetworkError',
    'MongoServerSelectionError',
    'MongoTopologyClosedError',
  ])('MongoDB: a %s is a ConnectionError read by the adapter, a plain error to the core', (name) => {
    // A server that refused: a selection failure naming it is no timeout (see mongo-errors.ts).
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { name: 'MongoNetworkError' });
    const cause = Object.assign(new Error('connect ECONNREFUSED mongodb://u:hunter2@db'), {
      name,
      reason: { servers: new Map([['db:27017', { error: refused }]]) },
    });
    const ctx = { backend: 'mongo', operation: 'loadInfo', agentId: 'a' };
    const bounds = { connectTimeoutMs: 1, operationTimeoutMs: 1 };
    for (const wrapped of [
      wrapMongoError(cause, ctx, bounds),
      wrapMongoError(cause, ctx),
      new MongoKvBackend(async () => {
        throw new Error('not opened');
      }).classifyError(cause, ctx),
    ]) {
      expect(wrapped).toBeInstanceOf(ConnectionError);
      expect(wrapped).toMatchObject({ code: 'KODE_CONNECTION', backend: 'mongo', agentId: 'a', cause });
      expect(wrapped?.message).not.toContain('hunter2');
    }
    expect(wrapDriverError(cause, ctx).constructor).toBe(KodeStoreError);
  });

  it('MongoDB: a timeout with bounds is a TimeoutError naming the bound; other errors are left to the core', () => {
    const cause = Object.assign(new Error('timed out'), { name: 'MongoNetworkTimeoutError' });
    const wrapped = classifyMongoError(cause, {}, { connectTimeoutMs: 1, operationTimeoutMs: 250 });
    expect(wrapped).toMatchObject({ code: 'KODE_TIMEOUT', timeoutMs: 250 });
    expect(classifyMongoError(driverError('ECONNRESET'), {})).toBeUndefined();
    expect(
      classifyMongoError(Object.assign(new Error('dup'), { name: 'MongoServerError', code: 11000 }), {}),
    ).toBeUndefined();
    expect(wrapMongoError(driverError('ECONNRESET'), {})).toBeInstanceOf(ConnectionError);
  });

  it('leaves an unknown driver error a plain KodeStoreError with the driver error as cause', () => {
    const cause = driverError('XX000');
    const wrapped = wrapDriverError(cause, { operation: 'loadInfo' });
    expect(wrapped.constructor).toBe(KodeStoreError);
    expect(wrapped).toMatchObject({ code: 'KODE_STORE_ERROR', cause });
  });

  it('keeps an error of this package as it is', () => {
    const own = new TimeoutError('statement took too long', { timeoutMs: 50 });
    expect(wrapDriverError(own, { operation: 'x' })).toBe(own);
    expect(own).toMatchObject({ code: 'KODE_TIMEOUT', timeoutMs: 50, name: 'TimeoutError' });
  });

  it('never copies a password from the driver message', () => {
    const wrapped = wrapDriverError(
      driverError('08006', 'could not connect to postgres://u:hunter2@db/x'),
      {},
    );
    expect(wrapped.message).not.toContain('hunter2');
  });
});

describe('CorruptDataError', () => {
  it('names the damaged file', () => {
    const error = new CorruptDataError('file is not a database', { path: '/tmp/x.db', backend: 'sqlite' });
    expect(error).toMatchObject({ code: 'KODE_CORRUPT', path: '/tmp/x.db' });
  });
});
