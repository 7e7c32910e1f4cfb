import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { afterAll, describe, inject } from 'vitest';
import type { MongoServerFeature } from '../setup/global-setup.js';
import { type ChildLock, startLockHolder } from './lock-holder-process.js';

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

export type { MongoServerFeature } from '../setup/global-setup.js';

/**
 * What the run's server lacks, each with the reason (global-setup asked it:
 * `explain`, transactions, a TTL monitor). Tests needing one of them go in
 * `describeMongoWith`, so they run wherever the server has it.
 */
export const mongoLacks: Partial<Record<MongoServerFeature, string>> = inject('mongoLacks') ?? {};

/**
 * A `describe` inside `describeMongo` for tests that need `feature` of the
 * server: registered as skipped, the server's reason in its name, when the
 * server lacks it; run (and required to pass) when it has it.
 */
export function describeMongoWith(feature: MongoServerFeature, name: string, body: () => void): void {
  const lacking = mongoLacks[feature];
  if (lacking === undefined) describe(name, body);
  else describe.skip(`${name} (skipped: needs ${feature}; ${lacking})`, body);
}

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

export type { ChildLock } from './lock-holder-process.js';

/** Starts a process that takes `agentId`'s lock in `dbName` (collections `prefix`*) with the given lease. */
export function lockInChildProcess(
  place: { url: string; dbName: string; collectionPrefix: string },
  agentId: string,
  leaseMs: number,
): ChildLock {
  return startLockHolder('mongo-lock-holder.ts', [
    place.url,
    place.dbName,
    place.collectionPrefix,
    agentId,
    String(leaseMs),
  ]);
}

/** A test/child script running in its own process. */
export interface ChildScript {
  /** Resolves with the first line of its output that matches (waiting for it); rejects if it exits first. */
  line(pattern: RegExp): Promise<string>;
  /** SIGKILLs it (a crash); resolves once it is gone. */
  kill(): Promise<void>;
}

/** Starts `test/child/<script>` with `args` under tsx. */
export function startChild(script: string, args: string[]): ChildScript {
  const path = fileURLToPath(new URL(`../child/${script}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const waiting = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const wake of waiting) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code;
      for (const wake of waiting) wake();
      resolve();
    }),
  );
  return {
    line(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find((line) => pattern.test(line));
          if (found !== undefined) {
            waiting.delete(check);
            resolve(found);
          } else if (exitCode !== undefined) {
            waiting.delete(check);
            reject(new Error(`${script} exited (${exitCode}) before printing ${pattern}: ${stderr}`));
          }
        };
        waiting.add(check);
        check();
      });
    },
    async kill() {
      if (exitCode === undefined) child.kill('SIGKILL');
      await exited;
    },
  };
}
