import pg from 'pg';
import { PostgresStore } from '../../adapters/postgres/index.js';
import type { Timeline } from '../../src/types.js';
import { dropSchemas } from '../backends.js';
import type { BenchProfile } from '../bench-profile.js';
import type { Measurement } from '../bench-result.js';
import { medianOfRuns, type RunFigures, timeMs } from '../measure.js';
import { type Workload, withFreshBackend } from '../workload.js';

/**
 * (s) Scaling past one table (issue 18): one agent's costs as the events
 * table grows, with `kode_events` as one table and partitioned by hash of
 * agent id (`eventPartitions`), side by side in one run.
 *
 * Both layouts are loaded to each size in turn (100,000, 1,000,000 and
 * 10,000,000 events in a full run), the bulk of the rows with one
 * `INSERT ... SELECT FROM generate_series` per million (minutes, not the
 * hours that appends through the store would take), laid out as a fleet
 * writes them: within each million rows, 1,000 agents stream at once, their
 * events interleaved. One "probe" agent per size has `probeEvents` events
 * spread evenly over the table up to that size, so its rows are as
 * scattered as a real agent's. At each size, through the store and with raw
 * `pg` on the same table (the baseline, in the same run, interleaved):
 * - a batch of `APPEND_BATCH` events appended to one agent (the store's
 *   un-awaited `appendEvent`s; raw: one INSERT of the rows);
 * - the probe's first `FIRST_PAGE` events (`readEvents`, stopped there;
 *   raw: one SELECT ... ORDER BY id LIMIT);
 * - all of the probe's events (raw: one SELECT ... ORDER BY id), every
 *   entry parsed from JSON on both sides.
 * Reads are of a warm cache (a warm-up run first): the figures say what the
 * indexes cost as they grow, not what the disk does.
 */

const PARTITIONS = 16;
const APPEND_BATCH = 100;
const FIRST_PAGE = 100;
/** Agents streaming at once in each million rows of the bulk load, each with 1,000 of them. */
const STREAMING = 1_000;
const LOAD_CHUNK = 500_000;
/** Timed repetitions of each read in one run (the median of runs is reported). */
const PAGE_REPEATS = 20;
const FULL_READ_REPEATS = 5;

/** The sizes the events table is loaded to, and the probe agents' events, by profile. */
export function partitionSizes(profile: BenchProfile['name']): { sizes: number[]; probeEvents: number } {
  if (profile === 'quick') return { sizes: [5_000, 20_000], probeEvents: 200 };
  // --medium is for a machine shared with other work: the 10,000,000 rows of each layout are left out.
  if (profile === 'medium') return { sizes: [100_000, 1_000_000], probeEvents: 2_000 };
  return { sizes: [100_000, 1_000_000, 10_000_000], probeEvents: 2_000 };
}

const probeId = (size: number) => `probe-${size}`;
const appendId = (size: number, side: 'store' | 'raw') => `append-${side}-${size}`;

/** The SQL expression of row `g`'s agent: a probe's every `size / probeEvents`-th row up to its size, else a streaming agent. */
function agentOfRow(sizes: number[], probeEvents: number): string {
  // Probe i takes the rows whose remainder is i: distinct from every other probe's when strides divide each other.
  const probes = sizes.map(
    (size, i) =>
      `WHEN g <= ${size} AND g % ${Math.max(1, Math.floor(size / probeEvents))} = ${i} THEN '${probeId(size)}'`,
  );
  return `CASE ${probes.join(' ')} ELSE 'bulk-' || (g / 1000000) || '-' || (g % ${STREAMING}) END`;
}

/**
 * Rows `from`..`to` of the table: a streamed text chunk of ~260 bytes of
 * JSON each (the shape `appendEvent` stores), the row's number as its seq.
 */
function loadStatement(events: string, agents: string, sizes: number[], probeEvents: number): string {
  const bookmark = `'"bookmark":{"seq":' || g || ',"timestamp":' || (1795000000000 + g) || '}'`;
  const json = `'{"cursor":' || g || ',' || ${bookmark} || ',"event":{"channel":"progress","type":"text_chunk","step":' || (g % 50) || ',"delta":"' || md5(g::text) || ' ' || md5((g + 1)::text) || ' ' || md5((g + 2)::text) || '",' || ${bookmark} || '}}'`;
  return `WITH rows AS (
      SELECT g, ${agentOfRow(sizes, probeEvents)} AS agent_id FROM generate_series($1::bigint, $2::bigint) AS g
    ),
    registered AS (
      INSERT INTO ${agents} (agent_id) SELECT DISTINCT agent_id FROM rows ON CONFLICT (agent_id) DO NOTHING
    )
    INSERT INTO ${events} (agent_id, seq, channel_key, timeline_json)
    SELECT agent_id, g, 'progress', ${json} FROM rows ORDER BY g`;
}

function appendEvent(n: number): Timeline {
  const bookmark = { seq: n, timestamp: 1_795_000_000_000 + n };
  return {
    cursor: n,
    bookmark,
    event: { channel: 'progress', type: 'text_chunk', step: 1, delta: `appended ${n}`, bookmark },
  } as unknown as Timeline;
}

type Layout = 'plain' | 'hash';
const LAYOUT_NAMES: Record<Layout, string> = {
  plain: 'one table',
  hash: `${PARTITIONS} hash partitions`,
};

interface LayoutPlace {
  layout: Layout;
  schema: string;
  store: PostgresStore;
  events: string;
}

/** One run of the store's three figures on `place` at `size`. */
async function storeRun(
  place: LayoutPlace,
  size: number,
  run: number,
  probeEvents: number,
): Promise<RunFigures> {
  const { store } = place;
  const agent = appendId(size, 'store');
  const append = await timeMs(() =>
    Promise.all(
      Array.from({ length: APPEND_BATCH }, (_, i) =>
        store.appendEvent(agent, appendEvent(run * APPEND_BATCH + i)),
      ),
    ),
  );
  const probe = probeId(size);
  let firstPage = 0;
  for (let repeat = 0; repeat < PAGE_REPEATS; repeat++) {
    firstPage += await timeMs(async () => {
      let seen = 0;
      for await (const _ of store.readEvents(probe)) if (++seen === FIRST_PAGE) break;
    });
  }
  let fullRead = 0;
  for (let repeat = 0; repeat < FULL_READ_REPEATS; repeat++) {
    fullRead += await timeMs(async () => {
      let seen = 0;
      for await (const _ of store.readEvents(probe)) seen++;
      if (seen !== probeEvents) throw new Error(`${probe} has ${seen} events, not ${probeEvents}`);
    });
  }
  return { append, firstPage: firstPage / PAGE_REPEATS, fullRead: fullRead / FULL_READ_REPEATS };
}

/** The same with `pg` on the same table: named (prepared) statements, every row parsed. */
async function rawRun(pool: pg.Pool, place: LayoutPlace, size: number, run: number): Promise<RunFigures> {
  const agent = appendId(size, 'raw');
  const events = Array.from({ length: APPEND_BATCH }, (_, i) => appendEvent(run * APPEND_BATCH + i));
  const append = await timeMs(() =>
    pool.query({
      name: `append-${place.layout}`,
      text: `INSERT INTO ${place.events} (agent_id, seq, channel_key, timeline_json)
        SELECT $1, e.seq, 'progress', e.json FROM unnest($2::float8[], $3::text[]) WITH ORDINALITY AS e(seq, json, n)
        ORDER BY e.n`,
      values: [agent, events.map((e) => e.bookmark.seq), events.map((e) => JSON.stringify(e))],
    }),
  );
  const read = async (limit: boolean) => {
    const result = await pool.query<{ timeline_json: string }>({
      name: `read-${place.layout}-${limit}`,
      text: `SELECT timeline_json FROM ${place.events} WHERE agent_id = $1 ORDER BY id${limit ? ' LIMIT $2' : ''}`,
      values: limit ? [probeId(size), FIRST_PAGE] : [probeId(size)],
    });
    for (const row of result.rows) JSON.parse(row.timeline_json);
  };
  let firstPage = 0;
  for (let repeat = 0; repeat < PAGE_REPEATS; repeat++) firstPage += await timeMs(() => read(true));
  let fullRead = 0;
  for (let repeat = 0; repeat < FULL_READ_REPEATS; repeat++) fullRead += await timeMs(() => read(false));
  return { append, firstPage: firstPage / PAGE_REPEATS, fullRead: fullRead / FULL_READ_REPEATS };
}

const MIB = 1024 * 1024;

export const partitionsWorkload: Workload = {
  id: 's-partitions',
  title:
    "one agent's appendEvent and readEvents from 100,000 to 10,000,000 events, one table and hash partitions",
  touchesEvents: true,
  // Loading 10,000,000 events twice takes longer than all the rest of a full run.
  onRequest: true,
  async run(context) {
    if (context.backend.family !== 'postgres') {
      return { skipped: 'events partitioned by agent id are a PostgreSQL layout (eventPartitions)' };
    }
    if (context.backend.hybrid) {
      return { skipped: 'hybrid mode keeps events in files: the partitioned table holds none' };
    }
    const { sizes, probeEvents } = partitionSizes(context.profile.name);
    return withFreshBackend(context, 'partitions', async ({ store, location }) => {
      if (location.kind !== 'postgres' || !(store instanceof PostgresStore)) {
        throw new Error('the partitions workload needs a PostgresStore');
      }
      const hashSchema = `${location.schema}_h`;
      const places: LayoutPlace[] = [
        { layout: 'plain', schema: location.schema, store, events: '' },
        {
          layout: 'hash',
          schema: hashSchema,
          store: new PostgresStore({
            connection: location.url,
            schema: hashSchema,
            eventPartitions: PARTITIONS,
          }),
          events: '',
        },
      ];
      const admin = new pg.Client({
        connectionString: location.url,
        application_name: 'kode-store-bench-load',
      });
      const pool = new pg.Pool({
        connectionString: location.url,
        max: 4,
        application_name: 'kode-store-bench-raw',
      });
      await admin.connect();
      const results: Measurement[] = [];
      const figures = new Map<string, number>();
      try {
        for (const place of places) {
          await place.store.open();
          const table = (name: string) => `${pg.escapeIdentifier(place.schema)}.${pg.escapeIdentifier(name)}`;
          place.events = table('kode_events');
        }
        let loaded = 0;
        for (const size of sizes) {
          const label = `${size.toLocaleString('en')} events`;
          for (const place of places) {
            const agents = `${pg.escapeIdentifier(place.schema)}.kode_agents`;
            const sql = loadStatement(place.events, agents, sizes, probeEvents);
            const loadMs = await timeMs(async () => {
              for (let from = loaded + 1; from <= size; from += LOAD_CHUNK) {
                const to = Math.min(size, from + LOAD_CHUNK - 1);
                context.phase(
                  `loading ${LAYOUT_NAMES[place.layout]}: ${to.toLocaleString('en')} of ${label}`,
                );
                await admin.query(sql, [from, to]);
              }
              await admin.query(`ANALYZE ${place.events}`);
            });
            const [row] = (
              await admin.query<{ bytes: string }>(
                `SELECT sum(pg_total_relation_size(c.oid)) AS bytes FROM pg_class c
                  WHERE c.oid = $1::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`,
                [place.events],
              )
            ).rows;
            results.push({
              metric: `bulk load to ${label} · ${LAYOUT_NAMES[place.layout]}`,
              value: loadMs / 1000,
              unit: 's',
              target: null,
              note: `INSERT ... SELECT FROM generate_series of the ${(size - loaded).toLocaleString('en')} new rows + ANALYZE; table and indexes then ${(Number(row?.bytes) / MIB).toFixed(0)} MiB`,
            });
          }
          loaded = size;

          context.phase(`measuring at ${label}`);
          const subjects: Record<string, (run: number) => Promise<RunFigures>> = {};
          for (const place of places) {
            subjects[place.layout] = (run) => storeRun(place, size, run, probeEvents);
            subjects[`${place.layout}-raw`] = (run) => rawRun(pool, place, size, run);
          }
          const medians = await medianOfRuns(context.profile.runs, subjects);
          for (const place of places) {
            const ours = medians[place.layout] as RunFigures;
            const raw = medians[`${place.layout}-raw`] as RunFigures;
            const layout = LAYOUT_NAMES[place.layout];
            const rows: Array<[string, string, string]> = [
              [
                'append',
                `appendEvent ×${APPEND_BATCH} to one agent`,
                `${APPEND_BATCH} un-awaited appends, awaited together; raw: one INSERT of the ${APPEND_BATCH} rows`,
              ],
              [
                'firstPage',
                `readEvents, first ${FIRST_PAGE} of one agent's ${probeEvents.toLocaleString('en')}`,
                `mean of ${PAGE_REPEATS}; raw: SELECT ... ORDER BY id LIMIT ${FIRST_PAGE}, rows parsed`,
              ],
              [
                'fullRead',
                `readEvents, all ${probeEvents.toLocaleString('en')} of one agent`,
                `mean of ${FULL_READ_REPEATS}; raw: SELECT ... ORDER BY id, rows parsed`,
              ],
            ];
            for (const [key, metric, note] of rows) {
              figures.set(`${place.layout}:${key}:${size}`, ours[key] as number);
              results.push({
                metric: `${metric} · ${label} · ${layout}`,
                value: ours[key] as number,
                unit: 'ms',
                raw: raw[key] as number,
                target: null,
                note,
              });
            }
          }
        }

        // Flat: the largest size's figure against the smallest's, per layout.
        const smallest = sizes[0] as number;
        const largest = sizes[sizes.length - 1] as number;
        for (const place of places) {
          for (const [key, what] of [
            ['append', `appendEvent ×${APPEND_BATCH}`],
            ['firstPage', `readEvents first ${FIRST_PAGE}`],
            ['fullRead', `readEvents all ${probeEvents.toLocaleString('en')}`],
          ] as const) {
            const big = figures.get(`${place.layout}:${key}:${largest}`) as number;
            const small = figures.get(`${place.layout}:${key}:${smallest}`) as number;
            results.push({
              metric: `${what}: ${largest.toLocaleString('en')} ÷ ${smallest.toLocaleString('en')} events · ${LAYOUT_NAMES[place.layout]}`,
              value: big / small,
              unit: '×',
              target: { kind: 'max', limit: 1.5, unit: '×' },
              note: `${big.toFixed(2)} ms at ${largest.toLocaleString('en')}, ${small.toFixed(2)} ms at ${smallest.toLocaleString('en')}`,
            });
          }
        }
        return results;
      } finally {
        await places[1]?.store.close().catch(() => undefined);
        await pool.end().catch(() => undefined);
        await admin.end().catch(() => undefined);
        await dropSchemas(location.url, [hashSchema]);
      }
    });
  },
};
