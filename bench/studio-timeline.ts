import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type OpenedLocation, openLocation } from '../bin/open-location.js';
import { startStudio } from '../bin/studio/studio-server.js';
import { studioSourceOf } from '../bin/studio/studio-source.js';
import { LARGE, largeEvent, writeLargeAgent } from '../test/bin/studio-data.js';
import { postgresUnavailable, postgresUrlFromEnv } from './backends.js';
import { median, quantile } from './measure.js';

/**
 * `npm run bench:studio`: how long the studio takes to answer for an agent
 * with 100,000 events and 2,000 messages, next to one with 10 events, over
 * HTTP as the browser asks (a studio on port 0, the location opened
 * read-only). The first request after the studio starts is reported on its
 * own (cold), then the median and p95 of 20 more.
 *
 * PostgreSQL: KODE_BENCH_POSTGRES_URL, else KODE_TEST_POSTGRES_URL, else
 * postgres://postgres@127.0.0.1:5432/test; left out, with the reason, when
 * it does not answer.
 */

const RUNS = 20;
const SMALL = 'agt-small';

const REQUESTS: Array<[label: string, path: (id: string) => string]> = [
  ['timeline, first page (50 events)', (id) => `api/agent/events?id=${encodeURIComponent(id)}`],
  ['agent header (info, stats, lineage)', (id) => `api/agent?id=${encodeURIComponent(id)}`],
  ['conversation, first page (50 messages)', (id) => `api/agent/messages?id=${encodeURIComponent(id)}`],
  ['timeline, page at offset 50,000', (id) => `api/agent/events?id=${encodeURIComponent(id)}&offset=50000`],
  ['every event counted (by channel)', (id) => `api/agent/event-counts?id=${encodeURIComponent(id)}`],
];

async function seed(location: string): Promise<void> {
  const opened = await openLocation(location, { env: {}, readOnly: false });
  if (opened.kind !== 'store') throw new Error(`${location} is not a store`);
  try {
    await writeLargeAgent(opened.store);
    await opened.store.saveInfo(SMALL, {
      agentId: SMALL,
      templateId: 'tpl-small',
      createdAt: '2026-02-01T00:00:00Z',
      lineage: [],
      configVersion: 'v1',
      messageCount: 0,
      lastSfpIndex: 0,
    });
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => opened.store.appendEvent(SMALL, largeEvent(i, 0))),
    );
  } finally {
    await opened.close();
  }
}

async function timed(url: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(url);
  await response.arrayBuffer();
  const elapsed = performance.now() - started;
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
  return elapsed;
}

function ms(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
}

async function measure(backend: string, location: string): Promise<string[]> {
  let opened: OpenedLocation | undefined;
  const rows: string[] = [];
  try {
    opened = await openLocation(location, { env: {}, readOnly: true });
    const studio = await startStudio({ source: studioSourceOf(opened), port: 0 });
    try {
      for (const [label, path] of REQUESTS) {
        for (const [agent, id] of [
          [`${LARGE.events.toLocaleString('en-US')} events`, LARGE.agentId],
          ['10 events', SMALL],
        ] as const) {
          // The offset page only exists for the large agent.
          if (id === SMALL && path(id).includes('offset=')) continue;
          const url = `${studio.url}${path(id)}`;
          const cold = await timed(url);
          const warm: number[] = [];
          for (let run = 0; run < RUNS; run++) warm.push(await timed(url));
          rows.push(
            `| ${backend} | ${agent} | ${label} | ${ms(cold)} | ${ms(median(warm))} | ${ms(quantile(warm, 0.95))} |`,
          );
          process.stderr.write('.');
        }
      }
    } finally {
      await studio.close();
    }
  } finally {
    await opened?.close();
  }
  return rows;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kode-bench-studio-'));
  const rows: string[] = [];
  const notes: string[] = [];
  try {
    const sqlite = `sqlite:${join(dir, 'studio.db')}`;
    process.stderr.write('seeding SQLite…\n');
    await seed(sqlite);
    rows.push(...(await measure('sqlite', sqlite)));

    const url = postgresUrlFromEnv();
    const unavailable = await postgresUnavailable(url);
    if (unavailable) {
      notes.push(`postgres left out: ${unavailable}`);
    } else {
      const schema = `kode_bench_studio_${process.pid}`;
      const location = `${url}${url.includes('?') ? '&' : '?'}schema=${schema}`;
      try {
        process.stderr.write('\nseeding PostgreSQL…\n');
        await seed(location);
        rows.push(...(await measure('postgres', location)));
      } finally {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
        await client.end();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    [
      '',
      `Studio response times over HTTP (${RUNS} runs after the first, cold one; the largest agent holds ${LARGE.events.toLocaleString('en-US')} events and ${LARGE.messages.toLocaleString('en-US')} messages)`,
      '',
      '| backend | agent | request | first (cold) | median | p95 |',
      '| --- | --- | --- | ---: | ---: | ---: |',
      ...rows,
      ...notes.map((note) => `\n${note}`),
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:studio: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
