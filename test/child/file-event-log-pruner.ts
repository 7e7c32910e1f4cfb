/**
 * Child process for the FileEventLog prune crash test: appends events to one
 * agent (channels cycling progress, monitor, control) and prints `ack <index>`
 * once each append has resolved, while it rewrites the agent's file over and
 * over without its monitor events, printing `rewrite` as each rewrite starts
 * (after `initial` appends, which make the file large).
 * Runs until it is killed.
 *
 * Usage: node --import tsx test/child/file-event-log-pruner.ts '<json config>'
 */
import { FileEventLog } from '../../src/hybrid/file-event-log.js';
import { encodeJson } from '../../src/json-codec.js';
import type { AgentChannel, Timeline } from '../../src/types.js';

export interface PrunerConfig {
  baseDir: string;
  agentId: string;
  /** Size of each event's text. */
  payloadBytes: number;
  /** Appends kept in flight at once. */
  window: number;
  /** Events appended (and acknowledged) before the rewrites start, so that each rewrite copies a large file. */
  initial: number;
}

const CHANNELS: AgentChannel[] = ['progress', 'monitor', 'control'];

/** The event appended at `index`; the test reads `index` back from `event.delta`. */
export function prunerEvent(index: number, payloadBytes: number): Timeline {
  const bookmark = { seq: index, timestamp: 1_795_361_537_000 + index };
  const channel = CHANNELS[index % CHANNELS.length] as AgentChannel;
  return {
    cursor: index,
    bookmark,
    event: { channel, type: 'text_chunk', step: 1, delta: `${index}:${'x'.repeat(payloadBytes)}`, bookmark },
  } as Timeline;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as PrunerConfig;
  const log = new FileEventLog({ baseDir: config.baseDir });
  let next = 0;
  let acknowledged = 0;
  const first: Array<Promise<void>> = [];
  for (; next < config.initial; next++) {
    const index = next;
    first.push(
      log.append(config.agentId, encodeJson(prunerEvent(index, config.payloadBytes), 'event')).then(() => {
        acknowledged++;
        process.stdout.write(`ack ${index}\n`);
      }),
    );
  }
  await Promise.all(first);
  const pump = () => {
    while (next - acknowledged < config.window) {
      const index = next++;
      log.append(config.agentId, encodeJson(prunerEvent(index, config.payloadBytes), 'event')).then(
        () => {
          acknowledged++;
          process.stdout.write(`ack ${index}\n`);
          pump();
        },
        (error: unknown) => {
          process.stderr.write(`append failed: ${String(error)}\n`);
          process.exit(1);
        },
      );
    }
  };
  pump();
  for (;;) {
    process.stdout.write('rewrite\n');
    await log.pruneEvents(config.agentId, { channels: ['monitor'], keepNewest: 0 }, false);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
