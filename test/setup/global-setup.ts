import type {} from 'vitest';
import type { TestProject } from 'vitest/node';

/**
 * Finds the database servers the tests run against, in this order:
 * 1. a URL from the environment (KODE_TEST_POSTGRES_URL, KODE_TEST_MONGODB_URL);
 * 2. a container started by testcontainers, when a Docker engine answers;
 * 3. none: that backend's tests are skipped, with one loud line saying why.
 * KODE_TEST_REQUIRE=sqlite,postgres,... turns a missing server into a failure
 * instead of a skip (CI sets it for the servers its machine has).
 *
 * It also asks the MongoDB server what it can do (`mongoLacks`): a standalone
 * server has no transactions, and the wire-compatible emulator CI runs has no
 * `explain` and no TTL monitor either. Tests that need one of these are skipped
 * with the server's reason (test/helpers/mongo.ts); on a server that has it
 * they run and must pass.
 */

type Backend = 'postgres' | 'mongodb';

/** What a MongoDB server may lack that some tests need. */
export type MongoServerFeature = 'explain' | 'transactions' | 'ttlMonitor';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string | null;
    mongodbUrl: string | null;
    skipReasons: Record<string, string>;
    /** Each feature the MongoDB server lacks, with why (empty when it has them all or there is no server). */
    mongoLacks: Partial<Record<MongoServerFeature, string>>;
  }
}

const stops: Array<() => Promise<unknown>> = [];

function required(): Set<string> {
  return new Set(
    (process.env.KODE_TEST_REQUIRE ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean)
      .map((s) => (s === 'mongo' ? 'mongodb' : s)),
  );
}

async function dockerAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 5000)),
    ]);
    return true;
  } catch {
    return false;
  }
}

async function startContainer(backend: Backend): Promise<string> {
  if (backend === 'postgres') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:16-alpine').start();
    stops.push(() => container.stop());
    return container.getConnectionUri();
  }
  const { MongoDBContainer } = await import('@testcontainers/mongodb');
  const container = await new MongoDBContainer('mongo:7').start();
  stops.push(() => container.stop());
  return `${container.getConnectionString()}?directConnection=true`;
}

// Server error code of a command the server does not know.
const COMMAND_NOT_FOUND = 59;

function commandNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === COMMAND_NOT_FOUND;
}

/**
 * Asks the server behind `url` for each feature. A feature counts as missing
 * only on a clear answer (a standalone topology, an unknown command, a
 * disabled monitor); any other failure is an error of the run, not a skip.
 */
async function probeMongo(url: string): Promise<Partial<Record<MongoServerFeature, string>>> {
  const { MongoClient } = await import('mongodb');
  const { deploymentFromHello } = await import('../../adapters/mongo/mongo-connection.js');
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 });
  const lacks: Partial<Record<MongoServerFeature, string>> = {};
  try {
    await client.connect();
    const admin = client.db('admin');
    const deployment = deploymentFromHello(await admin.command({ hello: 1 }));
    if (!deployment.transactions) lacks.transactions = deployment.reason;
    try {
      await client
        .db('kode_probe')
        .command({ explain: { find: 'none', filter: {} }, verbosity: 'queryPlanner' });
    } catch (error) {
      if (!commandNotFound(error)) throw error;
      lacks.explain = 'the server has no explain command, so the query plans (index use) cannot be seen';
    }
    try {
      const reply = await admin.command({ getParameter: 1, ttlMonitorEnabled: 1 });
      if (reply.ttlMonitorEnabled !== true) lacks.ttlMonitor = 'the server runs with ttlMonitorEnabled off';
    } catch (error) {
      if (!commandNotFound(error)) throw error;
      lacks.ttlMonitor =
        'the server has no getParameter command to show a TTL monitor (a MongoDB emulator without one), so TTL indexes never remove documents';
    }
  } finally {
    await client.close();
  }
  return lacks;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const require = required();
  const envVar: Record<Backend, string> = {
    postgres: 'KODE_TEST_POSTGRES_URL',
    mongodb: 'KODE_TEST_MONGODB_URL',
  };
  const urls: Record<Backend, string | null> = { postgres: null, mongodb: null };
  const skipReasons: Record<string, string> = {};
  let docker: boolean | undefined;

  for (const backend of ['postgres', 'mongodb'] as const) {
    const fromEnv = process.env[envVar[backend]];
    if (fromEnv) {
      urls[backend] = fromEnv;
      continue;
    }
    docker ??= await dockerAnswers();
    if (docker) {
      urls[backend] = await startContainer(backend);
      continue;
    }
    const reason = `${envVar[backend]} is not set and no Docker engine answers for testcontainers`;
    if (require.has(backend)) {
      throw new Error(`KODE_TEST_REQUIRE names ${backend}, but ${reason}.`);
    }
    skipReasons[backend] = reason;
    console.warn(`\n!!! SKIPPING ALL ${backend.toUpperCase()} TESTS: ${reason}. !!!\n`);
  }

  // The KODE SDK is not on the registry: its tests run when KODE_SDK_TARBALL names it (test/helpers/sdk.ts).
  if (!process.env.KODE_SDK_TARBALL) {
    const reason =
      'KODE_SDK_TARBALL is not set (the KODE SDK tarball or folder, installed with npm install --no-save)';
    if (require.has('sdk')) throw new Error(`KODE_TEST_REQUIRE names sdk, but ${reason}.`);
    skipReasons.sdk = reason;
    console.warn(`\n!!! SKIPPING THE KODE SDK TESTS: ${reason}. !!!\n`);
  }

  const mongoLacks = urls.mongodb ? await probeMongo(urls.mongodb) : {};
  for (const [feature, reason] of Object.entries(mongoLacks)) {
    console.warn(`MongoDB tests that need ${feature} are skipped: ${reason}.`);
  }

  project.provide('postgresUrl', urls.postgres);
  project.provide('mongodbUrl', urls.mongodb);
  project.provide('skipReasons', skipReasons);
  project.provide('mongoLacks', mongoLacks);
  return async () => {
    for (const stop of stops) await stop();
  };
}
