import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describePostgres, dropSchema, requirePostgresUrl } from './helpers/postgres.js';
import { describeSdk, installedSdk, SDK_PACKAGE } from './helpers/sdk.js';

/**
 * The README's TypeScript examples run as written. Every ```ts block carries
 * a marker on the line before it: `<!-- readme-test -->` (run it),
 * `<!-- readme-test: postgres -->` (run it with DATABASE_URL set),
 * `<!-- readme-test: sdk -->` (run it with the real KODE SDK, when
 * KODE_SDK_TARBALL names it), or `<!-- readme-test: skip (reason) -->`. A block without a marker fails this
 * test, so no example can quietly go stale.
 */

const root = resolve(__dirname, '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');

const ENTRY_POINTS: Record<string, string> = {
  'kode-store': 'src/index.ts',
  'kode-store/sqlite': 'adapters/sqlite/index.ts',
  'kode-store/postgres': 'adapters/postgres/index.ts',
  'kode-store/mongo': 'adapters/mongo/index.ts',
  'kode-store/conformance': 'conformance/index.ts',
};

interface Example {
  line: number;
  mode: 'run' | 'postgres' | 'sdk' | 'skip' | 'unmarked';
  code: string;
}

async function readmeExamples(): Promise<Example[]> {
  const lines = (await readFile(join(root, 'README.md'), 'utf8')).split('\n');
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    const marker = /^<!-- readme-test(?:: (postgres|sdk|skip)\b.*)? -->$/.exec(lines[i - 1] ?? '');
    const mode = !marker ? 'unmarked' : ((marker[1] ?? 'run') as Example['mode']);
    examples.push({ line: i + 1, mode, code: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return examples;
}

/** Points the package's own names at this checkout's sources, and the SDK at the one installed here. */
function localImports(code: string): string {
  return code
    .replace(/from '(kode-store(?:\/[a-z]+)?)'/g, (whole, name: string) => {
      const target = ENTRY_POINTS[name];
      return target ? `from '${join(root, target)}'` : whole;
    })
    .replaceAll(`from '${SDK_PACKAGE}'`, () => `from '${join(installedSdk(), 'dist', 'index.js')}'`);
}

async function runExample(
  example: Example,
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  const cwd = await mkdtemp(join(tmpdir(), 'kode-readme-'));
  dirs.push(cwd);
  const file = join(cwd, `example-line-${example.line}.mts`);
  await writeFile(file, localImports(example.code));
  return new Promise((done) => {
    const child = spawn(tsx, [file], { cwd, env: { ...process.env, KODE_STORE_TYPE: '', ...env } });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('close', (code) => done({ code, out }));
  });
}

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const examples = await readmeExamples();

describe('README examples', () => {
  it('has a readme-test marker on every TypeScript example', () => {
    expect(examples.length).toBeGreaterThan(5);
    expect(examples.filter((e) => e.mode === 'unmarked').map((e) => `README.md:${e.line}`)).toEqual([]);
  });

  for (const example of examples.filter((e) => e.mode === 'run')) {
    it(`runs the example at README.md:${example.line}`, async () => {
      const { code, out } = await runExample(example, {});
      expect({ code, out: code === 0 ? '' : out }).toEqual({ code: 0, out: '' });
    });
  }
});

describeSdk('README examples with the KODE SDK', () => {
  for (const example of examples.filter((e) => e.mode === 'sdk')) {
    it(`runs the example at README.md:${example.line}`, async () => {
      const { code, out } = await runExample(example, {});
      expect({ code, out: code === 0 ? '' : out }).toEqual({ code: 0, out: '' });
    });
  }
});

describePostgres('README examples on PostgreSQL', () => {
  afterAll(() => dropSchema('kode_readme'));
  for (const example of examples.filter((e) => e.mode === 'postgres')) {
    it(`runs the example at README.md:${example.line}`, async () => {
      const { code, out } = await runExample(example, { DATABASE_URL: requirePostgresUrl() });
      expect({ code, out: code === 0 ? '' : out }).toEqual({ code: 0, out: '' });
    });
  }
});
