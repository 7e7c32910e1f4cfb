import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { expect, it } from 'vitest';
import { describePostgres, useTestSchema } from '../../helpers/postgres.js';

/**
 * PostgreSQL connections killed under load: no pg driver event may crash the
 * process, and every call that fails says so with a typed error.
 */

const LOAD_SCRIPT = fileURLToPath(new URL('../../child/postgres-fault-load.ts', import.meta.url));

/** What the child reports when it is stopped. */
interface LoadSummary {
  succeeded: Record<string, number>;
  rejected: Record<string, number>;
  untyped: string[];
  recovered: boolean;
}

/** The codes a call may fail with when its connection was killed. */
const CONNECTION_FAULT_CODES = new Set(['KODE_CONNECTION', 'KODE_TIMEOUT']);

describePostgres('PostgresStore under killed connections', () => {
  const place = useTestSchema('faults');

  it('survives connections terminated every few milliseconds, and every rejection is typed', async () => {
    const applicationName = `kode-fault-${process.pid}-${Date.now()}`;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', LOAD_SCRIPT, place.url, place.schema, applicationName],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ready = new Promise<boolean>((resolve) => {
      child.stdout.on('data', () => {
        if (stdout.includes('ready\n')) resolve(true);
      });
      void exited.then(() => resolve(false));
    });

    const admin = new pg.Client({ connectionString: place.url, application_name: 'kode-store-test-killer' });
    await admin.connect();
    let terminated = 0;
    try {
      expect(await ready, `the child did not get ready: ${stderr}`).toBe(true);
      // A fixed number of rounds, not a duration: each round kills every
      // connection of the child that exists at that moment, then waits a
      // few milliseconds so that the pool has opened new ones under load.
      for (let round = 0; round < 400 && child.exitCode === null; round++) {
        // pg_terminate_backend in the select list runs only for rows the
        // WHERE kept (in the WHERE, the planner may call it on any backend).
        const killed = await admin.query<{ terminated: boolean }>(
          'SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE application_name = $1',
          [applicationName],
        );
        terminated += killed.rows.filter((row) => row.terminated).length;
        await new Promise((resolve) => setTimeout(resolve, 2 + (round % 5)));
      }
    } finally {
      await admin.end();
      if (child.exitCode === null) child.stdin.write('stop\n');
    }
    const code = await exited;
    expect(code, `the child crashed:\n${stderr}`).toBe(0);

    const line = stdout.split('\n').find((l) => l.startsWith('summary '));
    const summary = JSON.parse((line ?? 'summary {}').slice('summary '.length)) as LoadSummary;
    const rejections = Object.entries(summary.rejected);
    const total = rejections.reduce((sum, [, n]) => sum + n, 0);
    console.log(
      `terminated ${terminated} connections; calls that succeeded ${JSON.stringify(summary.succeeded)}; ` +
        `rejected ${total}: ${JSON.stringify(summary.rejected)}`,
    );
    expect(summary.untyped, 'rejections that are not ConnectionError/TimeoutError').toEqual([]);
    for (const [errorCode] of rejections) expect(CONNECTION_FAULT_CODES).toContain(errorCode);
    // The kills must have hit calls in flight, or the test proved nothing.
    expect(terminated).toBeGreaterThan(0);
    expect(total).toBeGreaterThan(0);
    expect(summary.recovered, 'calls after the kills stopped failed').toBe(true);
  }, 120_000);
});
