import { spawn } from 'node:child_process';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ENTRY, copyFixture, REPO_ROOT, TSX_LOADER, tempDir } from './cli-support.js';

/** The first ```sh block of the README's "Command line" section. */
async function readmeExamples(): Promise<string> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Command line'));
  const match = /```sh\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('README has no ```sh block under "## Command line"');
  return match[1]!;
}

let scratch: { dir: string; remove: () => Promise<void> };
beforeAll(async () => {
  scratch = await tempDir('kode-cli-readme-');
});
afterAll(() => scratch.remove());

describe('README "Command line" section', () => {
  it('runs as written, every line succeeding, in a directory holding ./data/store', async () => {
    const examples = await readmeExamples();
    expect(examples).toMatch(/kode-store migrate/);
    await mkdir(join(scratch.dir, 'data'));
    await copyFixture(join(scratch.dir, 'data'));
    await rename(join(scratch.dir, 'data/jsonstore'), join(scratch.dir, 'data/store'));
    // `kode-store` as an installed bin would run it; `set -e` stops at the first failing line.
    const script = `set -euo pipefail\nkode-store() { node --import ${TSX_LOADER} ${CLI_ENTRY} "$@"; }\n${examples}`;
    const child = spawn('bash', ['-c', script], {
      cwd: scratch.dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number>((done) => child.on('close', (c) => done(c ?? -1)));
    expect({ code, out: code === 0 ? '' : out }).toEqual({ code: 0, out: '' });
    expect(out).toMatch(/verification \(deep\): every agent matches/);
    expect(out).toMatch(/imported 11 agent\(s\)/);
    expect(out).toMatch(/dry run, nothing changed/);
    expect(out).toMatch(/: pruned/);
    // Each line starts a Node process with the TypeScript loader (a few seconds on a busy machine):
    // the block's 15 commands need more than the default budget.
  }, 180_000);
});
