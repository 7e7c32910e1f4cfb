import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describePostgres, dropSchema, requirePostgresUrl, uniqueSchemaName } from './helpers/postgres.js';

/**
 * The README's main job, `npm run demo`, run as a user would: a fresh working
 * directory, the store chosen by the environment, exit code and report checked.
 */

const root = resolve(__dirname, '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');

function runDemo(cwd: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(tsx, [join(root, 'examples', 'demo.ts')], {
      cwd,
      env: { ...process.env, KODE_STORE_TYPE: '', DATABASE_URL: '', DEMO_STEPS: '6', ...env },
    });
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

describe('npm run demo', () => {
  it('runs on the embedded SQLite default with nothing configured, writing only under ./data', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'kode-demo-'));
    dirs.push(cwd);
    const { code, out } = await runDemo(cwd, {});
    expect(out).toContain('backend: sqlite');
    expect(out).toContain('everything read back exactly');
    expect(code).toBe(0);
    expect((await stat(join(cwd, 'data', 'agents.db'))).isFile()).toBe(true);
  });

  it('runs in hybrid mode with events in files under KODE_STORE_PATH', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'kode-demo-'));
    dirs.push(cwd);
    const { code, out } = await runDemo(cwd, { KODE_STORE_EVENTS: 'file' });
    expect(out).toContain('everything read back exactly');
    expect(code).toBe(0);
    expect((await stat(join(cwd, 'data', 'store'))).isDirectory()).toBe(true);
  });
});

describePostgres('npm run demo on PostgreSQL', () => {
  const schema = uniqueSchemaName('demo');
  afterAll(() => dropSchema(schema));

  it('runs with KODE_STORE_TYPE=postgres and DATABASE_URL', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'kode-demo-'));
    dirs.push(cwd);
    const { code, out } = await runDemo(cwd, {
      KODE_STORE_TYPE: 'postgres',
      DATABASE_URL: requirePostgresUrl(),
      KODE_POSTGRES_SCHEMA: schema,
    });
    expect(out).toContain('backend: postgres');
    expect(out).toContain('everything read back exactly');
    expect(code).toBe(0);
  });
});
