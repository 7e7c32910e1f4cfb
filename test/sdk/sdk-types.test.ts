import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { describeSdk, installedSdk } from '../helpers/sdk.js';

/**
 * Our types against the real SDK's declarations: compiles test/sdk (the
 * checks in sdk-types.check.ts, and the integration test written with the
 * SDK's own types) with the project's compiler settings.
 */

const here = dirname(fileURLToPath(import.meta.url));
const tsc = join(resolve(here, '../..'), 'node_modules', 'typescript', 'bin', 'tsc');

describeSdk('the types of kode-store and of the KODE SDK', () => {
  it('are the same, and our stores are the SDK stores, checked by the compiler', async () => {
    installedSdk();
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [tsc, '--noEmit', '-p', join(here, 'tsconfig.json')],
      { maxBuffer: 16 * 1024 * 1024 },
    ).catch((error: { stdout: string; stderr: string }) => error);
    expect(`${stdout}${stderr}`).toBe('');
  }, 180_000);
});
