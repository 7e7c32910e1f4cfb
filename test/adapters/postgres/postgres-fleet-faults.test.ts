import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../../adapters/postgres/index.js';
import type { Timeline } from '../../../src/types.js';
import {
  type FleetChildConfig,
  type FleetChildReport,
  fleetAgentId,
  type TurnRecord,
  turnEvent,
  turnToolCall,
} from '../../child/postgres-fleet.js';
import { postgresSkipReason, postgresUrl } from '../../helpers/postgres.js';
import {
  type PrivatePostgres,
  privatePostgresSkipReason,
  startPrivatePostgres,
} from '../../helpers/private-postgres.js';

/**
 * A fleet on one PostgreSQL server under faults: 4 processes each drive 25
 * agents the way the KODE SDK does (test/child/postgres-fleet.ts), every agent
 * by two processes so that its lock is contended, while this test terminates their
 * connections over and over and then restarts the server once. The server is
 * a private one (test/helpers/private-postgres.ts): the shared server is
 * never faulted.
 *
 * Afterwards, from what each process recorded and what the server holds:
 * every write that resolved is there exactly once and in lock order, a write
 * that rejected is there whole or not at all, no two processes ever held one
 * agent's lock at once, and every process went on working after the restart
 * without being restarted itself. No assertion is about time.
 */

const CHILD = fileURLToPath(new URL('../../child/postgres-fleet.ts', import.meta.url));
const PROCESSES = 4;
/** Agents per process; processes p and p + 2 drive the same 25, so each agent has two processes. */
const AGENTS_PER_PROCESS = 25;
const AGENTS = 2 * AGENTS_PER_PROCESS;
const EVENTS_PER_TURN = 5;
/** Rounds of pg_terminate_backend before the restart (a count, not a duration). */
const KILL_ROUNDS = 40;
const SCHEMA = 'kode_fleet';
/** Clean turns each process must finish after the restart. */
const PROGRESS_TURNS = 10;

const skip = postgresUrl ? privatePostgresSkipReason() : postgresSkipReason;
const describeFleet = skip
  ? (name: string, body: () => void) => describe.skip(`${name} (skipped: ${skip})`, body)
  : describe;

/** A child with its output split into lines as they come. */
interface FleetChild {
  process: ChildProcess;
  applicationName: string;
  /** Sends a line to the child's stdin. */
  send(line: string): void;
  /** Resolves with the first line starting with `prefix`, or rejects if the child exits first. */
  line(prefix: string): Promise<string>;
  exited: Promise<number | null>;
  stderr(): string;
}

/** Starts a fleet process; it waits for its config (`configure`) before it does anything. */
function startChild(index: number, applicationName: string): FleetChild {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => {
    for (const wake of waiters.splice(0)) wake();
  });
  const find = (prefix: string) =>
    stdout.split('\n').find((line, i, all) => line.startsWith(prefix) && i < all.length - 1);
  return {
    process: child,
    applicationName,
    exited,
    stderr: () => stderr,
    send: (line) => child.stdin?.write(`${line}\n`),
    async line(prefix) {
      for (;;) {
        const found = find(prefix);
        if (found !== undefined) return found;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`process ${index} exited before "${prefix}":\n${stderr}`);
        }
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

const tagOf = (text: string) =>
  /^p(\d+) t(\d+)/.exec(text)?.slice(1).map(Number) as [number, number] | undefined;

/** Everything one agent's turns (of every process) wrote or tried to write, in lock order. */
interface AgentTurn extends TurnRecord {
  process: number;
}

describeFleet(
  'PostgreSQL: a fleet of 4 processes × 25 agents (each agent in two) under killed connections and a server restart',
  () => {
    let server: PrivatePostgres | undefined;
    const children: FleetChild[] = [];
    afterAll(async () => {
      for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
      await server?.destroy();
    });

    it('keeps every resolved write exactly once and in order, no rejected write half-applied, locks exclusive, every process going', async () => {
      const started = performance.now();
      // Where the time went, for the log line at the end (never asserted).
      const phases: string[] = [];
      const phase = (name: string) => phases.push(`${name} ${Math.round(performance.now() - started)}`);
      for (let p = 0; p < PROCESSES; p++) children.push(startChild(p, `kode-fleet-${p}`));
      server = await startPrivatePostgres();
      const url = server.url;
      // Migrated once up front, so the processes start on a current schema.
      const setup = new PostgresStore({ connection: url, schema: SCHEMA });
      await setup.open();
      await setup.close();
      for (const [p, child] of children.entries()) {
        const config: FleetChildConfig = {
          url,
          schema: SCHEMA,
          process: p,
          agents: Array.from({ length: AGENTS_PER_PROCESS }, (_, k) => (p % 2) * AGENTS_PER_PROCESS + k),
          eventsPerTurn: EVENTS_PER_TURN,
          applicationName: child.applicationName,
          // The default lease, longer than the kills and the restart take: a
          // lease only excludes while its holder can renew it, and one that
          // lapsed while held would let a second holder in.
          lockLeaseMs: 15_000,
          // A lease left by an acquire whose reply was lost blocks its agent
          // until it expires; the turn gives up instead and the agent goes on later.
          lockWaitMs: 3_000,
          progressTurns: PROGRESS_TURNS,
        };
        child.send(JSON.stringify(config));
      }
      phase('server');
      await Promise.all(children.map((child) => child.line('ready')));
      phase('ready');

      const names = children.map((child) => child.applicationName);
      const admin = new pg.Client({ connectionString: url, application_name: 'kode-fleet-killer' });
      await admin.connect();
      let terminated = 0;
      try {
        for (let round = 0; round < KILL_ROUNDS; round++) {
          // In the select list, so that it runs only for the rows the WHERE kept.
          const killed = await admin.query<{ done: boolean }>(
            'SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = ANY($1)',
            [names],
          );
          terminated += killed.rows.filter((row) => row.done).length;
          await new Promise((resolve) => setTimeout(resolve, 10 + (round % 4) * 10));
        }
      } finally {
        await admin.end();
      }
      phase('killed');
      await server.restart();
      phase('restarted');
      for (const child of children) child.send('restarted');
      // Every process, still the same process, completes turns again.
      await Promise.all(children.map((child) => child.line('progress')));
      phase('progress');
      for (const child of children) child.send('stop');
      const codes = await Promise.all(children.map((child) => child.exited));
      expect(codes, children.map((child) => child.stderr()).join('\n')).toEqual(children.map(() => 0));

      const reports = await Promise.all(
        children.map(
          async (child) =>
            JSON.parse((await child.line('report ')).slice('report '.length)) as FleetChildReport,
        ),
      );
      const turns: AgentTurn[] = reports.flatMap((report, process) =>
        report.turns.map((turn) => ({ ...turn, process })),
      );

      // Every rejection is one of ours, and the faults did hit calls in flight.
      const outcomes = turns.flatMap((turn) => [
        turn.load,
        turn.messages,
        turn.toolCalls,
        ...(turn.events ?? []),
      ]);
      const failures = outcomes.filter((outcome) => outcome !== undefined && outcome !== 'ok') as string[];
      const acquireFailures = reports.flatMap((report) => Object.keys(report.acquireFailures));
      expect([...failures, ...acquireFailures].filter((code) => !code.startsWith('KODE_'))).toEqual([]);
      expect(terminated).toBeGreaterThan(0);
      expect(failures.length).toBeGreaterThan(0);
      for (const report of reports) {
        expect(report.turns.filter((turn) => turn.afterRestart && turn.load === 'ok').length).toBeGreaterThan(
          0,
        );
      }

      const store = new PostgresStore({ connection: url, schema: SCHEMA });
      try {
        for (let agent = 0; agent < AGENTS; agent++) {
          const agentId = fleetAgentId(agent);
          const mine = turns.filter((turn) => turn.agent === agent).sort((a, b) => a.start - b.start);
          // Locks never overlapped: each holder let go before the next one had it.
          for (let i = 1; i < mine.length; i++) {
            const [before, after] = [mine[i - 1] as AgentTurn, mine[i] as AgentTurn];
            expect(
              before.end,
              `agent ${agent}: ${JSON.stringify(before)} overlaps ${JSON.stringify(after)} (${phases.join(', ')}, started ${Math.round(performance.timeOrigin + started)})`,
            ).toBeLessThanOrEqual(after.start);
          }
          const rank = new Map(mine.map((turn, i) => [`${turn.process}:${turn.turn}`, i]));
          const attempted = (key: string) => {
            const turn = mine[rank.get(key) ?? -1];
            return turn !== undefined && turn.load === 'ok';
          };

          // Messages: whole pairs only, each turn at most once, in lock order, every resolved save there.
          const messages = await store.loadMessages(agentId);
          expect(messages.length % 2, `agent ${agent}: an odd number of messages`).toBe(0);
          const messageTurns: string[] = [];
          for (let i = 0; i < messages.length; i += 2) {
            const [question, answer] = [messages[i], messages[i + 1]].map((m) =>
              m?.content[0]?.type === 'text' ? m.content[0].text : '',
            ) as [string, string];
            const tag = tagOf(question);
            expect(
              tag && answer === `p${tag[0]} t${tag[1]} answer`,
              `agent ${agent}: ${question} / ${answer}`,
            ).toBe(true);
            messageTurns.push(`${tag?.[0]}:${tag?.[1]}`);
          }
          checkOrderedOnce(`agent ${agent} messages`, messageTurns, rank, attempted);
          for (const turn of mine.filter((t) => t.messages === 'ok')) {
            expect(messageTurns, `agent ${agent}: resolved save of p${turn.process} t${turn.turn}`).toContain(
              `${turn.process}:${turn.turn}`,
            );
          }

          // Tool-call records: whole records, each at most once, in lock order, every resolved save there.
          const toolCalls = await store.loadToolCallRecords(agentId);
          const callTurns = toolCalls.map((call) => {
            const [, p, t] = /^call-p(\d+)-t(\d+)$/.exec(call.id) ?? [];
            expect(call).toEqual(turnToolCall(Number(p), Number(t)));
            return `${p}:${t}`;
          });
          checkOrderedOnce(`agent ${agent} tool calls`, callTurns, rank, attempted);
          for (const turn of mine.filter((t) => t.toolCalls === 'ok')) {
            expect(callTurns).toContain(`${turn.process}:${turn.turn}`);
          }

          // Events: each append at most once, intact, in (lock order, call order); every resolved one there.
          const events: Timeline[] = [];
          for await (const event of store.readEvents(agentId)) events.push(event);
          const eventKeys = events.map((event) => {
            const delta = (event.event as { delta?: string }).delta ?? '';
            const [, p, t, i] = /^p(\d+) t(\d+) e(\d+)$/.exec(delta) ?? [];
            expect(event).toEqual(turnEvent(Number(p), Number(t), Number(i)));
            return { turn: `${p}:${t}`, index: Number(i) };
          });
          const seen = new Set<string>();
          let last = [-1, -1];
          for (const { turn, index } of eventKeys) {
            const key = `${turn}:${index}`;
            expect(seen.has(key), `agent ${agent}: event ${key} stored twice`).toBe(false);
            seen.add(key);
            expect(attempted(turn), `agent ${agent}: event ${key} of a turn that never wrote`).toBe(true);
            const position = [rank.get(turn) ?? -1, index];
            const inOrder =
              (position[0] as number) > (last[0] as number) ||
              (position[0] === last[0] && (position[1] as number) > (last[1] as number));
            expect(inOrder, `agent ${agent}: event ${key} out of order`).toBe(true);
            last = position;
          }
          for (const turn of mine) {
            for (const [index, outcome] of (turn.events ?? []).entries()) {
              if (outcome === 'ok') expect(seen).toContain(`${turn.process}:${turn.turn}:${index}`);
            }
          }
        }
      } finally {
        await store.close();
      }

      const resolved = outcomes.filter((outcome) => outcome === 'ok').length;
      console.log(
        `fleet: ${turns.length} turns (${turns.filter((turn) => turn.afterRestart).length} after the restart), ` +
          `${resolved} calls resolved, ${failures.length} rejected (${[...new Set(failures)].join(', ')}), ` +
          `${terminated} connections terminated, release retries ${reports.reduce((n, r) => n + r.releaseRetries, 0)}, ` +
          `acquire failures ${JSON.stringify(reports.map((r) => r.acquireFailures))}; ` +
          `${Math.round(performance.now() - started)} ms (${phases.join(', ')})`,
      );
    }, 120_000);
  },
);

/** `turns` holds each turn at most once, only turns that tried to write, in lock order. */
function checkOrderedOnce(
  what: string,
  turns: string[],
  rank: Map<string, number>,
  attempted: (key: string) => boolean,
): void {
  expect(new Set(turns).size, `${what}: a turn stored twice`).toBe(turns.length);
  for (const key of turns) expect(attempted(key), `${what}: ${key} never wrote`).toBe(true);
  const ranks = turns.map((key) => rank.get(key) ?? -1);
  expect(ranks, `${what}: not in lock order`).toEqual([...ranks].sort((a, b) => a - b));
}
