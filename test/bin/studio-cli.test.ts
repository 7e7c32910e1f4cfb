import type { ChildProcess } from 'node:child_process';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_LOCATION, spawnCli, startCli, tempDir } from './cli-support.js';
import { migrateFixture } from './studio-data.js';

/**
 * `kode-store studio` as users run it: the real entry point in a child
 * process, stopped by a signal; and every way it refuses to start.
 */

let scratch: { dir: string; remove: () => Promise<void> };
let db: string;

beforeAll(async () => {
  scratch = await tempDir('kode-studio-cli-');
  db = join(scratch.dir, 'agents.db');
  await migrateFixture(`sqlite:${db}`);
});

afterAll(() => scratch.remove());

interface Started {
  child: ChildProcess;
  url: string;
  output: () => { stdout: string; stderr: string };
  exit: Promise<number | null>;
}

/** Waits until `condition` holds (another process's doing), failing after 10 s. */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the condition never held');
}

/** Starts the studio and waits for the URL it prints. */
async function startStudio(args: string[], env: Record<string, string> = {}): Promise<Started> {
  const child = startCli(['studio', ...args], env);
  child.stdin!.end();
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exit = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const found = /(http:\/\/\S+)/.exec(stdout);
      if (found) resolve(found[1]!);
    });
    exit.then((code) => reject(new Error(`the studio exited (${code}) before printing a URL: ${stderr}`)));
  });
  return { child, url, output: () => ({ stdout, stderr }), exit };
}

describe('kode-store studio (the command)', () => {
  it('prints a loopback URL with a token, serves the store, and stops cleanly on Ctrl+C', async () => {
    const before = await stat(db);
    const started = await startStudio([`sqlite:${db}`, '--port', '0']);
    try {
      const url = new URL(started.url);
      expect(url.hostname).toBe('127.0.0.1');
      expect(url.pathname).toMatch(/^\/[A-Za-z0-9_-]{32}\/$/);
      expect(started.output().stdout).toContain(`kode-store studio: sqlite:${db} (sqlite, read-only)`);
      const agents = (await (await fetch(`${started.url}api/agents?prefix=agt-&limit=100`)).json()) as {
        items: unknown[];
      };
      expect(agents.items).toHaveLength(10);
      expect((await fetch(`${url.origin}/api/agents`)).status).toBe(401);
      expect((await fetch(`${started.url}api/agents`, { method: 'POST', body: '{}' })).status).toBe(405);
    } finally {
      started.child.kill('SIGINT');
    }
    expect(await started.exit).toBe(0);
    expect(started.output().stdout).toMatch(/kode-store studio: stopped\n$/);
    // Read-only: the database file was not written.
    const after = await stat(db);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.size).toBe(before.size);
  });

  it('stops on SIGTERM too, and serves a json: directory', async () => {
    const started = await startStudio([FIXTURE_LOCATION, '--port', '0']);
    const overview = (await (await fetch(`${started.url}api/overview`)).json()) as {
      backend: string;
      kv: boolean;
    };
    expect(overview).toMatchObject({ backend: 'json', kv: false });
    started.child.kill('SIGTERM');
    expect(await started.exit).toBe(0);
  });

  it('opens the URL with $BROWSER when asked to (--open)', async () => {
    const opened = join(scratch.dir, 'opened.txt');
    const browser = join(scratch.dir, 'browser.sh');
    await writeFile(browser, `#!/bin/sh\nprintf '%s' "$1" > '${opened}'\n`);
    await chmod(browser, 0o755);
    const started = await startStudio([`sqlite:${db}`, '--port', '0', '--open'], { BROWSER: browser });
    try {
      let given = '';
      await until(async () => {
        given = await readFile(opened, 'utf8').catch(() => '');
        return given !== '';
      });
      expect(given).toBe(started.url);
    } finally {
      started.child.kill('SIGINT');
    }
    expect(await started.exit).toBe(0);
  });

  it('warns when it listens beyond this machine, and still prints an address to open', async () => {
    const started = await startStudio([`sqlite:${db}`, '--port', '0', '--host', '0.0.0.0']);
    try {
      expect(new URL(started.url).hostname).toBe('127.0.0.1');
      // The warning goes to stderr, a pipe of its own: wait for it to arrive.
      await until(() => started.output().stderr.includes('listening on'));
      expect(started.output().stderr).toMatch(
        /listening on 0\.0\.0\.0: anyone who can reach it and has the URL can read this store/,
      );
    } finally {
      started.child.kill('SIGINT');
    }
    expect(await started.exit).toBe(0);
  });
});

describe('kode-store studio: refusals', () => {
  it('refuses a port in use (exit 2), naming it', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const run = await spawnCli(['studio', `sqlite:${db}`, '--port', String(port)]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(
        `127.0.0.1:${port} is in use; choose another --port, or --port 0 for any free one`,
      );
    } finally {
      blocker.close();
    }
  });

  it('refuses a SQLite file that does not exist, and does not create it (read-only open)', async () => {
    const missing = join(scratch.dir, 'missing.db');
    const run = await spawnCli(['studio', `sqlite:${missing}`, '--port', '0']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/missing\.db/);
    await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses memory:, a json: path that is not a directory, and a bad port', async () => {
    const memory = await spawnCli(['studio', 'memory:', '--port', '0']);
    expect(memory.code).toBe(2);
    expect(memory.stderr).toMatch(/memory: a new in-memory store holds no data to read/);
    const json = await spawnCli(['studio', `json:${join(scratch.dir, 'nope')}`, '--port', '0']);
    expect(json.code).toBe(2);
    expect(json.stderr).toMatch(/is not a directory/);
    const port = await spawnCli(['studio', `sqlite:${db}`, '--port', '70000']);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/must be a port from 0 to 65535/);
  });

  it('lists studio in the help', async () => {
    const help = await spawnCli(['--help']);
    expect(help.stdout).toMatch(/studio \[options\] \[location\]/);
    const own = await spawnCli(['studio', '--help']);
    expect(own.stdout).toMatch(/--port <n>/);
    expect(own.stdout).toMatch(/read-only/);
  });
});
