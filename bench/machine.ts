import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { arch, cpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { median } from './measure.js';

/** What the figures were measured on: they mean little without it. */
export interface MachineDescription {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  sqlite: string;
  /** The PostgreSQL server's version, or null when it was not used. */
  postgres: string | null;
  /**
   * Median time of one small write + `fdatasync` in the run's directory: the
   * floor under every durable commit, and so under every awaited write.
   */
  fdatasyncMs: number;
}

async function fdatasyncMs(dir: string): Promise<number> {
  const probeDir = mkdtempSync(join(dir, 'fsync-probe-'));
  const handle = await open(join(probeDir, 'probe'), 'a');
  try {
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const started = performance.now();
      await handle.write('x'.repeat(256));
      await handle.datasync();
      times.push(performance.now() - started);
    }
    return median(times);
  } finally {
    await handle.close();
    rmSync(probeDir, { recursive: true, force: true });
  }
}

async function postgresVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ server_version: string }>('SHOW server_version');
    return result.rows[0]?.server_version ?? 'unknown';
  } finally {
    await client.end();
  }
}

/** Describes this machine; `postgresUrl` when PostgreSQL takes part in the run. */
export async function describeMachine(workspace: string, postgresUrl?: string): Promise<MachineDescription> {
  const memory = new Database(':memory:');
  const sqlite = (memory.prepare('SELECT sqlite_version() AS version').get() as { version: string }).version;
  memory.close();
  const cpuList = cpus();
  return {
    cpu: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    sqlite,
    postgres: postgresUrl === undefined ? null : await postgresVersion(postgresUrl),
    fdatasyncMs: Math.round((await fdatasyncMs(workspace)) * 1000) / 1000,
  };
}
