/**
 * Loaded with `node --import` (after tsx) into a child that runs the CLI:
 * once the `count`-th `appendEvent` for `agentId` has resolved
 * (KODE_TEST_STOP_AFTER_EVENTS=<agentId>:<count>), the process prints a
 * line starting `stop-after-events: stopping` on stderr and stops itself
 * with SIGSTOP. A test can then kill it at a known point of its work
 * instead of racing it: after that line the child runs nothing more.
 */
import { writeSync } from 'node:fs';
import { AgentStore } from '../../src/agent/agent-store.js';
import type { Timeline } from '../../src/types.js';

const setting = process.env.KODE_TEST_STOP_AFTER_EVENTS ?? '';
const split = setting.lastIndexOf(':');
const agentId = setting.slice(0, split);
const count = Number(setting.slice(split + 1));
if (split <= 0 || !Number.isInteger(count) || count < 1) {
  throw new Error(`KODE_TEST_STOP_AFTER_EVENTS must be <agentId>:<count>, not ${JSON.stringify(setting)}`);
}

const appendEvent = AgentStore.prototype.appendEvent;
let appended = 0;
AgentStore.prototype.appendEvent = async function (this: AgentStore, id: string, timeline: Timeline) {
  // Called at once, not after an await: appends reach the store in their call order.
  await appendEvent.call(this, id, timeline);
  if (id === agentId && ++appended === count) {
    // Synchronous, so the marker is out before the process stops (a pipe write may be asynchronous).
    writeSync(2, `stop-after-events: stopping after ${count} events of ${agentId}\n`);
    process.kill(process.pid, 'SIGSTOP');
  }
};
