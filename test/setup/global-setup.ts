import type {} from 'vitest';
import type { TestProject } from 'vitest/node';

/**
 * Finds the database servers the tests run against, in this order:
 * 1. a URL from the environment (KODE_TEST_POSTGRES_URL, KODE_TEST_MONGODB_URL);
 * 2. a container started by testcontainers, when a Docker engine answers;
 * 3. none: that backend's tests are skipped, with one loud line saying why.
 * KODE_TEST_REQUIRE=sqlite,postgres,... turns a missing server into a failure
 * instead of a skip (CI sets it for the servers its machine has).
 */

type Backend = 'postgres' | 'mongodb';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string | null;
    mongodbUrl: string | null;
    skipReasons: Record<string, string>;
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

  project.provide('postgresUrl', urls.postgres);
  project.provide('mongodbUrl', urls.mongodb);
  project.provide('skipReasons', skipReasons);
  return async () => {
    for (const stop of stops) await stop();
  };
}
