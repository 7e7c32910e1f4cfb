import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { afterAll, describe, inject } from 'vitest';

/**
 * The MongoDB server of this test run (from test/setup/global-setup.ts:
 * KODE_TEST_MONGODB_URL, else a testcontainers replica set), and a private
 * database per test file, dropped afterwards, so that files running at the
 * same time and other runs never see each other's collections.
 */

/** The server's URL, or null when MongoDB tests are skipped. */
export const mongodbUrl: string | null = inject('mongodbUrl');

/** Why MongoDB tests are skipped (null when they run). The global setup already printed it once, loudly. */
export const mongoSkipReason: string | null = mongodbUrl
  ? null
  : (inject('skipReasons').mongodb ?? 'no MongoDB server was found for this run');

/**
 * `describe` when a server is available; otherwise the block is registered
 * as skipped, with the reason in its name so that the report says why.
 */
export function describeMongo(name: string, body: () => void): void {
  if (mongodbUrl) describe(name, body);
  else describe.skip(`${name} (skipped: ${mongoSkipReason})`, body);
}

/** The URL, for code that only runs inside `describeMongo`. */
export function requireMongoUrl(): string {
  if (!mongodbUrl) throw new Error(`MongoDB is not available: ${mongoSkipReason}`);
  return mongodbUrl;
}

/** A database name no other file or run uses (MongoDB allows at most 63 bytes). */
export function uniqueDatabaseName(label: string): string {
  return `kode_test_${label}_${process.pid}_${randomBytes(4).toString('hex')}`.slice(0, 63);
}

/** Runs `body` with a short-lived client of its own (explain, drop, inspection). */
export async function withAdminClient<T>(body: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(requireMongoUrl(), { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/**
 * Reserves a unique database for the calling test file and drops it (and any
 * extra databases registered with `also`) after the file's tests. Call at the
 * top of a `describeMongo` block.
 */
export function useTestDatabase(label: string): {
  dbName: string;
  url: string;
  also(dbName: string): string;
} {
  const dbName = uniqueDatabaseName(label);
  const extra: string[] = [];
  afterAll(async () => {
    if (!mongodbUrl) return;
    await withAdminClient(async (client) => {
      for (const name of [dbName, ...extra]) await client.db(name).dropDatabase();
    });
  }, 60_000);
  return {
    dbName,
    get url() {
      return requireMongoUrl();
    },
    also(name: string) {
      extra.push(name);
      return name;
    },
  };
}

/** A lock held by a child process (see test/child/mongo-lock-holder.ts). */
export interface ChildLock {
  /** Resolves once the child holds the lock. */
  acquired: Promise<void>;
  /** Asks the child to release and exit; resolves when it has exited. */
  release(): Promise<void>;
  /** SIGKILLs the child (a crashed holder); resolves when it is gone. */
  kill(): Promise<void>;
}

const LOCK_HOLDER = fileURLToPath(new URL('../child/mongo-lock-holder.ts', import.meta.url));

/** Starts a process that takes `agentId`'s lock in `dbName` (collections `prefix`*) with the given lease. */
export function lockInChildProcess(
  place: { url: string; dbName: string; collectionPrefix: string },
  agentId: string,
  leaseMs: number,
): ChildLock {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      LOCK_HOLDER,
      place.url,
      place.dbName,
      place.collectionPrefix,
      agentId,
      String(leaseMs),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const acquired = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('acquired\n')) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`lock holder exited (${code}) before acquiring: ${stderr}`)),
    );
  });
  acquired.catch(() => undefined);
  return {
    acquired,
    async release() {
      child.stdin.write('release\n');
      await exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
