import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../../adapters/mongo/index.js';
import { mongoTimeoutError } from '../../../adapters/mongo/mongo-errors.js';
import type { Message } from '../../../src/types.js';

/**
 * Bounds on waiting for MongoDB. The classification of the driver's errors
 * needs no server. The rest stops and pauses a server, so it runs one of its
 * own (the wire-compatible emulator named by KODE_MONGO_EMULATOR, its
 * start.sh), never the one other test files share: killed (stop.sh) and
 * paused (SIGSTOP), each call must fail with a typed error within the bounds,
 * and the same store must work again once the server answers.
 */

const bounds = { connectTimeoutMs: 1_000, operationTimeoutMs: 1_500 };
const ctx = { backend: 'mongo', operation: 'loadMessages' };

describe("reading the driver's errors", () => {
  const named = (name: string, extra: object = {}) =>
    Object.assign(new Error(`${name} happened`), { name, ...extra });
  const selection = (...errors: unknown[]) =>
    named('MongoServerSelectionError', {
      reason: { servers: new Map(errors.map((error, i) => [`h${i}:27017`, { error }])) },
    });

  it('a reply that did not come in time is a TimeoutError naming the operation and the bound', () => {
    for (const error of [
      named('MongoNetworkTimeoutError'),
      named('MongoOperationTimeoutError'),
      named('MongoServerError', { code: 50 }),
    ]) {
      expect(mongoTimeoutError(error, ctx, bounds)).toMatchObject({
        code: 'KODE_TIMEOUT',
        operation: 'loadMessages',
        timeoutMs: 1_500,
        message: expect.stringContaining('operationTimeoutMs'),
      });
    }
  });

  it('no server selected: a TimeoutError when servers did not answer, left to ConnectionError when one refused', () => {
    expect(mongoTimeoutError(selection(named('MongoNetworkTimeoutError')), ctx, bounds)).toMatchObject({
      code: 'KODE_TIMEOUT',
      timeoutMs: 1_000,
    });
    expect(mongoTimeoutError(selection(null), ctx, bounds)).toMatchObject({ code: 'KODE_TIMEOUT' });
    const refused = named('MongoNetworkError', { message: 'connect ECONNREFUSED 127.0.0.1:1' });
    expect(mongoTimeoutError(selection(refused), ctx, bounds)).toBeUndefined();
    expect(
      mongoTimeoutError(selection(refused, named('MongoNetworkTimeoutError')), ctx, bounds),
    ).toBeUndefined();
  });

  it('other errors are not timeouts', () => {
    expect(mongoTimeoutError(named('MongoNetworkError'), ctx, bounds)).toBeUndefined();
    expect(mongoTimeoutError(named('MongoServerError', { code: 11000 }), ctx, bounds)).toBeUndefined();
    expect(mongoTimeoutError('text', ctx, bounds)).toBeUndefined();
  });

  it('a password in the driver message is not repeated', () => {
    const error = named('MongoNetworkTimeoutError', { message: 'mongodb://u:s3cret@h timed out' });
    expect(mongoTimeoutError(error, ctx, bounds)?.message).not.toContain('s3cret');
  });
});

const emulator = process.env.KODE_MONGO_EMULATOR;
const describeOwnServer = emulator
  ? describe
  : (name: string, body: () => void) =>
      describe.skip(
        `${name} (skipped: KODE_MONGO_EMULATOR is not set; this test stops and pauses a MongoDB server of its own)`,
        body,
      );

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Resolves once process `pid` is gone (a killed JVM still answers its open connections while it shuts down). */
async function untilGone(pid: number): Promise<void> {
  while (existsSync(`/proc/${pid}`)) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Resolves once every thread of `pid` is stopped (a signal reaches a busy thread on another core a little later). */
async function untilStopped(pid: number): Promise<void> {
  for (;;) {
    const threads = readdirSync(`/proc/${pid}/task`);
    // The state follows the command name in parentheses: `pid (name) T ...`.
    const states = threads.map(
      (tid) => readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]?.[0],
    );
    if (states.every((state) => state === 'T' || state === 't')) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const message: Message = { role: 'user', content: [{ type: 'text', text: 'still here' }] };

/**
 * The bounds of the own server's store. It runs every call under them, the calls
 * that must succeed too: the first ones on a freshly started emulator (a JVM
 * loading its classes) and those after a restart or SIGCONT. Under load (four
 * busy processes on two cores) 1 s of server selection was not enough for them.
 */
const serverBounds = { connectTimeoutMs: 5_000, operationTimeoutMs: 6_000 };

describeOwnServer('a MongoDB server that stops answering', () => {
  const run = mkdtempSync(join(tmpdir(), 'kode-mongo-own-'));
  const env = { ...process.env, MONGO_EMULATOR_RUN: run };
  let port = 0;
  let url = '';
  let store: MongoStore;
  const script = (name: 'start.sh' | 'stop.sh') => join(dirname(emulator as string), name);
  const start = () =>
    execFileSync('bash', [emulator as string, String(port)], { env })
      .toString()
      .trim();
  const stop = async () => {
    const stopped = pid();
    execFileSync('bash', [script('stop.sh'), String(port)], { env });
    await untilGone(stopped);
  };
  const pid = () => Number(readFileSync(join(run, `${port}.pid`), 'utf8'));

  beforeAll(async () => {
    port = await freePort();
    url = start();
    store = new MongoStore({ uri: url, dbName: 'timeouts', ...serverBounds, lockWaitTimeoutMs: 1_000 });
  }, 60_000);
  afterAll(async () => {
    await store?.close().catch(() => undefined);
    await stop();
    rmSync(run, { recursive: true, force: true });
  });

  it('killed: calls fail with ConnectionError, agent store and KV; after a restart the same store works again', async () => {
    await store.saveMessages('a', [message]);
    const instance = await store.kv.createInstance({ name: 'bounded' });
    await stop();
    await expect(store.loadMessages('a')).rejects.toMatchObject({
      code: 'KODE_CONNECTION',
      operation: 'loadMessages',
    });
    await expect(store.kv.get(instance.id, 'ns', 'k')).rejects.toMatchObject({
      code: 'KODE_CONNECTION',
      operation: 'kv.get',
    });
    // The emulator keeps its data in memory: the restarted server starts empty.
    start();
    await store.saveMessages('a', [message]);
    expect(await store.loadMessages('a')).toEqual([message]);
  }, 120_000);

  it('paused: calls fail with TimeoutError naming the operation and the bound; after it resumes the store works again', async () => {
    await store.saveMessages('b', [message]);
    const instance = await store.kv.createInstance({ name: 'paused' });
    process.kill(pid(), 'SIGSTOP');
    await untilStopped(pid());
    try {
      const loading = await store.loadMessages('b').catch((error: unknown) => error);
      expect(loading).toMatchObject({ code: 'KODE_TIMEOUT', operation: 'loadMessages' });
      expect([serverBounds.operationTimeoutMs, serverBounds.connectTimeoutMs]).toContain(
        (loading as { timeoutMs?: number }).timeoutMs,
      );
      await expect(store.kv.set(instance.id, 'ns', 'k', 1)).rejects.toMatchObject({
        code: 'KODE_TIMEOUT',
        operation: 'kv.set',
      });
      const health = await store.healthCheck();
      expect(health.healthy).toBe(false);
    } finally {
      process.kill(pid(), 'SIGCONT');
    }
    expect(await store.loadMessages('b')).toEqual([message]);
    await store.kv.set(instance.id, 'ns', 'k', 2);
    expect((await store.kv.get(instance.id, 'ns', 'k')).value).toBe(2);
  }, 120_000);
});
