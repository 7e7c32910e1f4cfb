import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, inject } from 'vitest';

/**
 * The real KODE SDK for the integration and type tests. It is not on the npm
 * registry: `KODE_SDK_TARBALL` names its packed tarball (or an unpacked
 * folder), installed beside our dependencies with
 * `npm install --no-save "$KODE_SDK_TARBALL"` (.ci/run does both). Without
 * the variable the SDK tests are skipped, with one loud line from
 * test/setup/global-setup.ts.
 */

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SDK_PACKAGE = '@shareai-lab/kode-sdk';

/** The tarball or folder the SDK tests use, or null when they are skipped. */
export const sdkSource: string | null = process.env.KODE_SDK_TARBALL || null;

const sdkSkipReason = inject('skipReasons').sdk ?? 'KODE_SDK_TARBALL is not set';

/** `describe` when the SDK is given; otherwise a skipped block whose name says why. */
export function describeSdk(name: string, body: () => void): void {
  if (sdkSource) describe(name, body);
  else describe.skip(`${name} (skipped: ${sdkSkipReason})`, body);
}

function packageJsonOf(source: string): { name: string; version: string } {
  const text = statSync(source).isDirectory()
    ? readFileSync(join(source, 'package.json'), 'utf8')
    : execFileSync('tar', ['-xzOf', source, 'package/package.json'], { encoding: 'utf8' });
  return JSON.parse(text) as { name: string; version: string };
}

/**
 * Checks that the SDK named by KODE_SDK_TARBALL is the one installed here, and
 * that it shares this project's single copy of each database driver (two
 * copies of better-sqlite3 in one process break SQLite's file locking).
 * Returns the installed SDK's directory.
 */
export function installedSdk(): string {
  if (!sdkSource) throw new Error('KODE_SDK_TARBALL is not set');
  const source = resolve(sdkSource);
  if (!existsSync(source)) throw new Error(`KODE_SDK_TARBALL names ${source}, which does not exist`);
  const wanted = packageJsonOf(source);
  const requireHere = createRequire(join(REPO_ROOT, 'package.json'));
  let manifest: string;
  try {
    manifest = requireHere.resolve(`${SDK_PACKAGE}/package.json`);
  } catch {
    throw new Error(`${SDK_PACKAGE} is not installed: run npm install --no-save "${sdkSource}"`);
  }
  const installed = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; version: string };
  if (installed.name !== wanted.name || installed.version !== wanted.version) {
    throw new Error(
      `KODE_SDK_TARBALL holds ${wanted.name}@${wanted.version}, but ${installed.name}@${installed.version} is installed: run npm install --no-save "${sdkSource}"`,
    );
  }
  const sdkDir = dirname(manifest);
  const requireFromSdk = createRequire(manifest);
  for (const driver of ['better-sqlite3', 'pg']) {
    const ours = requireHere.resolve(driver);
    const theirs = requireFromSdk.resolve(driver);
    if (ours !== theirs) throw new Error(`the SDK loads its own ${driver} (${theirs}), not ours (${ours})`);
  }
  return sdkDir;
}
