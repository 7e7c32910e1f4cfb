import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type pg from 'pg';
import type { QueryableStore } from '../../src/types.js';

/**
 * The peer: the KODE SDK's own stores (`SqliteStore`, `PostgresStore`, and
 * the `JSONStore` both keep their events in), loaded from the SDK installed
 * here. Found through the same variable as the SDK tests (`KODE_SDK_TARBALL`,
 * the packed tarball or an unpacked folder, installed with
 * `npm install --no-save "$KODE_SDK_TARBALL"`); without it the comparison is
 * skipped with one line.
 */

export const SDK_PACKAGE = '@shareai-lab/kode-sdk';

/**
 * A peer store as the workloads call it: the SDK's `QueryableStore` methods
 * (our types describe the same interface) and `close()`.
 */
export type PeerStore = QueryableStore & { close(): Promise<void> };

/** The SDK's exports the comparison uses. */
export interface PeerSdk {
  readonly version: string;
  /** `new SqliteStore(dbPath, fileStoreBaseDir)`: tables in SQLite, events and todos in a JSONStore. */
  readonly SqliteStore: new (
    dbPath: string,
    fileStoreBaseDir?: string,
  ) => PeerStore;
  /** `new PostgresStore(poolConfig, fileStoreBaseDir)`: tables in PostgreSQL, events and todos in a JSONStore. */
  readonly PostgresStore: new (
    config: pg.PoolConfig,
    fileStoreBaseDir: string,
  ) => PeerStore;
}

function packageJsonOf(source: string): { name: string; version: string } {
  const text = statSync(source).isDirectory()
    ? readFileSync(join(source, 'package.json'), 'utf8')
    : execFileSync('tar', ['-xzOf', source, 'package/package.json'], { encoding: 'utf8' });
  return JSON.parse(text) as { name: string; version: string };
}

/**
 * The installed SDK when `KODE_SDK_TARBALL` names it and the same version is
 * installed, or why the comparison cannot run.
 */
export function loadPeerSdk(
  repoRoot: string,
  env: NodeJS.ProcessEnv = process.env,
): { sdk: PeerSdk } | { skipped: string } {
  const source = env.KODE_SDK_TARBALL;
  if (!source) {
    return {
      skipped: `KODE_SDK_TARBALL is not set (the KODE SDK tarball, installed with npm install --no-save "$KODE_SDK_TARBALL")`,
    };
  }
  const path = resolve(source);
  if (!existsSync(path)) return { skipped: `KODE_SDK_TARBALL names ${path}, which does not exist` };
  const wanted = packageJsonOf(path);
  const requireHere = createRequire(join(repoRoot, 'package.json'));
  let manifest: string;
  try {
    manifest = requireHere.resolve(`${SDK_PACKAGE}/package.json`);
  } catch {
    return { skipped: `${SDK_PACKAGE} is not installed: run npm install --no-save "${source}"` };
  }
  const installed = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; version: string };
  if (installed.name !== wanted.name || installed.version !== wanted.version) {
    return {
      skipped: `KODE_SDK_TARBALL holds ${wanted.name}@${wanted.version}, but ${installed.name}@${installed.version} is installed`,
    };
  }
  const sdk = requireHere(SDK_PACKAGE) as Omit<PeerSdk, 'version'>;
  return {
    sdk: { version: installed.version, SqliteStore: sdk.SqliteStore, PostgresStore: sdk.PostgresStore },
  };
}
