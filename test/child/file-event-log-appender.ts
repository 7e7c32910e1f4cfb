/**
 * Child process for the FileEventLog tests: appends events to one agent and
 * prints `ack <index>` on stdout once each append has resolved (stdout to a
 * pipe is synchronous on Linux, so an `ack` line the parent reads really was
 * acknowledged before the process went on). With `count: -1` it appends until
 * it is killed.
 *
 * Usage: node --import tsx test/child/file-event-log-appender.ts '<json config>'
 */
import { FileEventLog } from '../../src/hybrid/file-event-log.js';
import { encodeJson } from '../../src/json-codec.js';
import type { AgentChannel, Timeline } from '../../src/types.js';

export interface AppenderConfig {
  baseDir: string;
  agentId: string;
  /** Tag written into every event, to tell writers apart. */
  writer: string;
  /** Number of events to append; -1 for "until killed". */
  count: number;
  /** Size of each event's text; a list cycles through several sizes. */
  payloadBytes: number | number[];
  /** Appends kept in flight at once (the SDK fires them without awaiting). */
  window: number;
}

const CHANNELS: AgentChannel[] = ['progress', 'monitor', 'control'];

/** The event a writer appends at `index`; the tests read `writer` and `index` back from `event.delta`. */
function appenderEvent(writer: string, index: number, payloadBytes: number): Timeline {
  const bookmark = { seq: index, timestamp: 1_795_361_537_000 + index };
  const channel = CHANNELS[index % CHANNELS.length] as AgentChannel;
  const delta = `${writer}:${index}:${'x'.repeat(payloadBytes)}`;
  return {
    cursor: index,
    bookmark,
    event: { channel, type: 'text_chunk', step: 1, delta, bookmark },
  } as Timeline;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as AppenderConfig;
  const sizes = Array.isArray(config.payloadBytes) ? config.payloadBytes : [config.payloadBytes];
  const log = new FileEventLog({ baseDir: config.baseDir });
  const unbounded = config.count < 0;
  let next = 0;
  let acknowledged = 0;
  await new Promise<void>((finished, failed) => {
    const pump = () => {
      while ((unbounded || next < config.count) && next - acknowledged < config.window) {
        const index = next++;
        const size = sizes[index % sizes.length] ?? 0;
        const line = encodeJson(appenderEvent(config.writer, index, size), 'event');
        log.append(config.agentId, line).then(() => {
          acknowledged++;
          process.stdout.write(`ack ${index}\n`);
          if (!unbounded && acknowledged === config.count) finished();
          else pump();
        }, failed);
      }
    };
    pump();
  });
  await log.close();
  process.stdout.write('done\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
