import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, spawnCli, tempDir } from './cli-support.js';

let project: { dir: string; remove: () => Promise<void> };

/** The walkthrough's harness in each module form a project may write it in. */
const HARNESSES: Record<string, string> = {
  'harness.ts': `import { MapStore } from './map-store';
export const harness = { name: 'map-store', create: async () => new MapStore(), destroy: async () => {} };
`,
  'harness.cts': `import { MapStore } from './map-store';
export default { name: 'map-store', create: async () => new MapStore(), destroy: async () => {} };
`,
  'harness.mts': `import { MapStore } from './map-store.ts';
export const createStore = async () => new MapStore();
`,
  'harness.cjs': `const { MapStore } = require('./map-store');
module.exports = { harness: { name: 'map-store', create: async () => new MapStore(), destroy: async () => {} } };
`,
};

// A fresh CommonJS project (no "type" in package.json), as \`npm init -y\` makes it, holding the walkthrough's store.
beforeAll(async () => {
  project = await tempDir('kode-cli-conformance-');
  await writeFile(join(project.dir, 'package.json'), JSON.stringify({ name: 'my-app', version: '1.0.0' }));
  const store = await readFile(join(REPO_ROOT, 'test/fixtures/walkthrough/map-store.ts'), 'utf8');
  await writeFile(join(project.dir, 'map-store.ts'), store);
  for (const [file, text] of Object.entries(HARNESSES)) await writeFile(join(project.dir, file), text);
});
afterAll(() => project.remove());

describe('kode-store conformance on a harness in a CommonJS project', () => {
  for (const file of Object.keys(HARNESSES)) {
    it(`loads ${file} and passes the sdk profile at level store, saying the KV suite was not run`, async () => {
      const run = await spawnCli(['conformance', file, '--profile', 'sdk'], { cwd: project.dir });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('store: profile sdk, level store (detected)');
      expect(run.stdout).toMatch(/^store: sdk: (\d+)\/\1, strict: not run$/m);
      expect(run.stdout).toMatch(/^store: \d+ passed, 0 failed, \d+ skipped$/m);
      expect(run.stdout).toContain(`kv: not run: ${file} exports no \`kvHarness\``);
    }, 60_000);
  }

  it('fails the strict profile (exit 1), with each failure and the scores of both profiles', async () => {
    const run = await spawnCli(['conformance', 'harness.ts', '--only', 'ids', '--json'], {
      cwd: project.dir,
    });
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as {
      store: { profile: string; byProfile: { sdk: { failed: number }; strict: { failed: number } } };
      kv: string;
      results?: unknown;
    };
    expect(report.store.profile).toBe('strict');
    expect(report.store.byProfile.sdk.failed).toBe(0);
    expect(report.store.byProfile.strict.failed).toBeGreaterThan(0);
    expect(report.kv).toMatch(/not run/);
  }, 60_000);

  it('takes --skip pattern=reason and --level, and refuses a pattern that names no case (exit 2)', async () => {
    const run = await spawnCli(
      [
        'conformance',
        'harness.ts',
        '--profile',
        'sdk',
        '--only',
        'events',
        '--skip',
        'events.stream.*=slow here',
        '--level',
        'store',
      ],
      { cwd: project.dir },
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^SKIP events\.stream\.large: .* — skipped by the run: slow here$/m);
    expect(run.stdout).toContain('kv: not run');
    const bad = await spawnCli(['conformance', 'harness.ts', '--skip', 'no-such-group.*'], {
      cwd: project.dir,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/names unknown cases: no-such-group\.\*/);
  }, 60_000);
});
