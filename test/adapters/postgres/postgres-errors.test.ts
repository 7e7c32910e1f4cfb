import { createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PostgresKvBackend, PostgresStore } from '../../../adapters/postgres/index.js';
import { classifyPostgresError } from '../../../adapters/postgres/postgres-errors.js';
import { ConnectionError, TimeoutError } from '../../../src/errors.js';
import { createKvStore } from '../../../src/kv/index.js';
import { describePostgres, useTestSchema } from '../../helpers/postgres.js';

/**
 * How pg's errors are read (adapters/postgres/postgres-errors.ts), on errors
 * the driver really raised: a killed session, a query on a client that lost
 * its socket, a server that accepts connections and never answers.
 */

const BOUNDS = { connectTimeoutMs: 10_000, statementTimeoutMs: 30_000, lockTimeoutMs: 30_000 };
const CTX = { backend: 'postgres', operation: 'test' };

/** A TCP server that accepts connections and never says a word: a PostgreSQL server that hangs at startup. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describePostgres('pg errors as typed errors', () => {
  const place = useTestSchema('pgerrors');
  let silent: Awaited<ReturnType<typeof silentServer>>;
  beforeAll(async () => {
    silent = await silentServer();
  });
  afterAll(async () => {
    await silent.close();
  });

  it('reads a terminated session, and a query on the client it left, as ConnectionError', async () => {
    const client = new pg.Client({
      connectionString: place.url,
      application_name: 'kode-store-test-pgerrors',
    });
    const heard: Error[] = [];
    client.on('error', (error) => heard.push(error));
    await client.connect();
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    const [{ pid }] = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [
      { pid: number },
    ];
    const killer = new pg.Client({
      connectionString: place.url,
      application_name: 'kode-store-test-pgerrors',
    });
    await killer.connect();
    // The session dies while a statement runs on it, so the FATAL answers that statement.
    const running = client.query('SELECT pg_sleep(30)').catch((error: unknown) => error);
    await killer.query('SELECT pg_terminate_backend($1)', [pid]);
    await killer.end();
    const killed = await running;
    // Only once the socket has closed does pg refuse queries up front (until
    // then a query is queued and fails as the connection ends).
    await ended;
    const afterwards = await client.query('SELECT 1').catch((error: unknown) => error);

    expect((killed as Error).message).not.toBe('');
    expect(classifyPostgresError(killed, CTX, BOUNDS)).toBeInstanceOf(ConnectionError);
    expect((afterwards as Error).message).toMatch(/not queryable/);
    expect(classifyPostgresError(afterwards, CTX, BOUNDS)).toBeInstanceOf(ConnectionError);
    await client.end().catch(() => undefined);
  });

  it('leaves errors of a working connection to the generic reading', async () => {
    const client = new pg.Client({
      connectionString: place.url,
      application_name: 'kode-store-test-pgerrors',
    });
    await client.connect();
    try {
      const syntax = await client.query('SELEC 1').catch((error: unknown) => error);
      const division = await client
        .query('SELECT 1 / 0')
        .then(() => undefined)
        .catch((error: unknown) => error);
      expect((syntax as { code?: string }).code).toBe('42601');
      expect(classifyPostgresError(syntax, CTX, BOUNDS)).toBeUndefined();
      expect((division as { code?: string }).code).toBe('22012');
      expect(classifyPostgresError(division, CTX, BOUNDS)).toBeUndefined();
    } finally {
      await client.end();
    }
  });

  it('a standalone KV store on a pool that cannot connect in time fails with TimeoutError', async () => {
    const pool = new pg.Pool({
      host: '127.0.0.1',
      port: silent.port,
      user: 'nobody',
      database: 'nothing',
      connectionTimeoutMillis: 200,
    });
    try {
      const kv = createKvStore(new PostgresKvBackend(pool, { schema: place.schema }));
      const failure = await kv.get('instance', 'ns', 'key').catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(TimeoutError);
      expect((failure as TimeoutError).message).toMatch(
        /no PostgreSQL connection within 200 ms \(the pool's connectionTimeoutMillis\)/,
      );
    } finally {
      await pool.end();
    }
  });

  it('a store whose server never answers fails with TimeoutError naming connectTimeoutMs', async () => {
    const store = new PostgresStore({
      connection: {
        host: '127.0.0.1',
        port: silent.port,
        user: 'nobody',
        database: 'nothing',
        connectionTimeoutMillis: 200,
      },
      schema: place.schema,
    });
    try {
      const failure = await store.loadMessages('agent').catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(TimeoutError);
      expect(failure).toMatchObject({ code: 'KODE_TIMEOUT', timeoutMs: 200, operation: 'loadMessages' });
      expect((failure as Error).message).toMatch(/200 ms \(connectTimeoutMs\)/);
    } finally {
      await store.close();
    }
  });
});
