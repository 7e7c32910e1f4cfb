import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from './bin/cli-support.js';

/**
 * The package as users get it: `npm pack` (which builds it), unpacked into a
 * node_modules folder, then every public entry point loaded with `require`
 * (the SDK is CommonJS) and with `import`, by plain node, no TypeScript.
 */

const run = promisify(execFile);
const root = resolve(__dirname, '..');
// Inside the repository, so the unpacked package finds its dependencies in the repository's node_modules.
const consumer = join(root, '.tmp', `pack-${process.pid}`);

const ENTRY_POINTS: Record<string, string[]> = {
  'kode-store': [
    'createExtendedStore',
    'MemoryStore',
    'createKvStore',
    'createDataStore',
    'createKvEnvelopeApi',
    'NotFoundError',
    'ConflictError',
    'LockTimeoutError',
    'ValidationError',
    'QueryError',
    'StoreClosedError',
    'ConfigError',
  ],
  'kode-store/sqlite': ['SqliteStore'],
  'kode-store/postgres': ['PostgresStore'],
  'kode-store/mongo': ['MongoStore'],
  'kode-store/conformance': ['runStoreConformance', 'verifyStore', 'runKvConformance', 'verifyKvStore'],
};

/** A script that loads every entry point, checks its exports, and uses the SQLite store once. */
function script(load: (name: string) => string): string {
  return `
const expected = ${JSON.stringify(ENTRY_POINTS)};
const missing = [];
const modules = {};
for (const [name, names] of Object.entries(expected)) {
  const mod = ${load('name')};
  modules[name] = mod;
  for (const n of names) if (typeof mod[n] !== 'function') missing.push(name + '#' + n);
}
if (missing.length) throw new Error('missing exports: ' + missing.join(', '));
// Every public class keeps its own name (logs and stack traces show it), and so do the errors made from it.
const renamed = [];
for (const [name, mod] of Object.entries(modules)) {
  for (const [key, value] of Object.entries(mod)) {
    if (typeof value !== 'function' || !/^[A-Z]/.test(key)) continue;
    if (value.name !== key) renamed.push(name + '#' + key + ' is named ' + value.name);
    if (value.prototype instanceof Error) {
      const made = new value('message', { timeoutMs: 1 });
      if (made.name !== key) renamed.push(name + '#' + key + ' makes errors named ' + made.name);
    }
  }
}
if (renamed.length) throw new Error('renamed classes: ' + renamed.join(', '));
const { SqliteStore } = modules['kode-store/sqlite'];
const { NotFoundError } = modules['kode-store'];
const store = new SqliteStore(':memory:');
await store.saveMessages('a/../b', [{ role: 'user', content: [{ type: 'text', text: 'héllo ✅' }] }]);
const loaded = await store.loadMessages('a/../b');
if (loaded[0].content[0].text !== 'héllo ✅') throw new Error('round trip failed');
const error = await store.batchFork('nobody', 1).then(() => null, (e) => e);
// One copy of the error classes per module format, shared by every entry point.
if (!(error instanceof NotFoundError) || error.code !== 'KODE_NOT_FOUND') throw new Error('NotFoundError is not shared: ' + error);
if (error.name !== 'NotFoundError' || !String(error.stack).startsWith('NotFoundError: ')) throw new Error('the store threw an error named ' + error.name);
await store.close();
console.log('ok');
`;
}

beforeAll(async () => {
  await mkdir(join(consumer, 'node_modules', 'kode-store'), { recursive: true });
  // npm pack runs `prepack` (the build), whose log shares stdout: the tarball's name is known instead.
  await run('npm', ['pack', '--pack-destination', consumer], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
  const { name, version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  const filename = `${name}-${version}.tgz`;
  await run('tar', [
    '-xzf',
    join(consumer, filename),
    '-C',
    join(consumer, 'node_modules', 'kode-store'),
    '--strip-components=1',
  ]);
}, 180_000);

afterAll(() => rm(consumer, { recursive: true, force: true }));

describe('the packed package', () => {
  it('loads every entry point with require (CommonJS, as the SDK does)', async () => {
    const file = join(consumer, 'check.cjs');
    await writeFile(
      file,
      `(async () => {${script((n) => `require(${n})`)}})().catch((e) => { console.error(e); process.exit(1); });`,
    );
    const { stdout } = await run(process.execPath, [file], { cwd: consumer });
    expect(stdout.trim()).toBe('ok');
  });

  it('loads every entry point with import (ESM)', async () => {
    const file = join(consumer, 'check.mjs');
    await writeFile(
      file,
      script((n) => `await import(${n})`),
    );
    const { stdout } = await run(process.execPath, [file], { cwd: consumer });
    expect(stdout.trim()).toBe('ok');
  });

  it('runs the kode-store command from its bin entry', async () => {
    const { stdout } = await run(
      process.execPath,
      [join(consumer, 'node_modules', 'kode-store', 'dist', 'cli.cjs'), '--help'],
      {
        cwd: consumer,
      },
    );
    expect(stdout).toMatch(/migrate/);
  });

  it('runs the conformance suite on a .ts harness in a CommonJS project, with no loader on the command line', async () => {
    // A project as `npm init -y` makes it (no "type"), with tsx installed (here: found in this repository's node_modules).
    const app = join(consumer, 'cjs-app');
    await mkdir(app, { recursive: true });
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'cjs-app', version: '1.0.0' }));
    await writeFile(
      join(app, 'map-store.ts'),
      await readFile(join(root, 'test/fixtures/walkthrough/map-store.ts'), 'utf8'),
    );
    await writeFile(
      join(app, 'harness.ts'),
      "import { MapStore } from './map-store';\n" +
        "export const harness = { name: 'map-store', create: async () => new MapStore(), destroy: async () => {} };\n",
    );
    const cli = join(consumer, 'node_modules', 'kode-store', 'dist', 'cli.cjs');
    const { stdout } = await run(process.execPath, [cli, 'conformance', 'harness.ts', '--profile', 'sdk'], {
      cwd: app,
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain('store: profile sdk, level store (detected)');
    expect(stdout).toMatch(/^store: sdk: (\d+)\/\1, strict: not run$/m);
    expect(stdout).toContain('kv: not run: harness.ts exports no `kvHarness`');
  });

  it('prints the package version with kode-store --version', async () => {
    const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    const cli = join(consumer, 'node_modules', 'kode-store', 'dist', 'cli.cjs');
    for (const flag of ['--version', '-V']) {
      const { stdout } = await run(process.execPath, [cli, flag], { cwd: consumer });
      expect(stdout).toBe(`${version}\n`);
    }
  });

  it('ships the studio: its page, scripts and styles are served from the package', async () => {
    const child = spawn(
      process.execPath,
      [
        join(consumer, 'node_modules', 'kode-store', 'dist', 'cli.cjs'),
        'studio',
        `json:${FIXTURE_DIR}`,
        '--port',
        '0',
      ],
      { cwd: consumer, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const found = /(http:\/\/\S+)/.exec(out);
          if (found) resolve(found[1]!);
        });
        child.on('close', (code) => reject(new Error(`studio exited with ${code}`)));
      });
      for (const file of ['', 'app.js', 'page-agent.js', 'studio.css']) {
        expect({ file, status: (await fetch(`${url}${file}`)).status }).toEqual({ file, status: 200 });
      }
      const agents = (await (await fetch(`${url}api/agents`)).json()) as { items: unknown[] };
      expect(agents.items).toHaveLength(10);
    } finally {
      child.kill('SIGINT');
    }
  });
});
