/**
 * The sizes of a run. `full` is issue 7's workload set (about 26 minutes on a
 * 2-core machine whose disk takes 0.4–3 ms per fsync, 2026-12-07, the peer
 * comparison and h's 1,000,000 events included);
 * `quick` proves the code works in well under a minute (the test suite runs
 * it); `large` is `full` with the 50,000-agent fleet and
 * the 10,000-agent scale run; `medium` is `full`
 * with the peer comparison at about a third of its sizes, for a machine
 * shared with other work (the SDK's stores rewrite whole lists per save, so
 * their time grows with the square of the conversation).
 */
export interface BenchProfile {
  readonly name: 'full' | 'quick' | 'large' | 'medium';
  /** Measured runs per comparison (after one warm-up); the report shows their median. */
  readonly runs: number;
  readonly conversation: { steps: number; warmupSteps: number };
  readonly events: {
    /** Appends fired at once without awaiting (one agent streaming). */
    inFlight: number;
    /**
     * Appends awaited one by one, per measured run. Each is a durable commit
     * (1–3 ms here), so three runs of this many stand for the 20,000
     * awaited appends: the rate is per commit and does not change with the count.
     */
    awaitedPerRun: number;
    /**
     * Measured runs of each read of the stream. A read takes tens of
     * milliseconds, so with three runs one garbage collection or cache miss
     * in one of them moves the median by a tenth; more runs cost little.
     */
    readRuns: number;
  };
  readonly toolCalls: { calls: number; perCall: number };
  readonly fleet: {
    agents: number;
    messagesPerAgent: number;
    toolCallsPerAgent: number;
    /** Agents saved at once, as a process running many agents does. */
    concurrency: number;
    pageSize: number;
    /** Timed repetitions of each query, after a warm-up. */
    queryRepeats: number;
    /** The per-query target in ms. */
    queryTargetMs: number;
  };
  readonly loadMessages: { messages: number };
  readonly fork: { messages: number; toolCalls: number; copies: number };
  readonly kv: {
    records: number;
    namespaces: number;
    /** Sets awaited one by one per measured run (each is a durable commit); the rest is written with setMany. */
    timedSetsPerRun: number;
    /** Gets per measured run, by `getConcurrency` callers each awaiting its gets. */
    getsPerRun: number;
    getConcurrency: number;
    queryRepeats: number;
  };
  /** The comparison with the SDK's own stores (bench/peer/), when the SDK is installed. */
  readonly peer: {
    /** Measured runs per comparison (after one warm-up). */
    runs: number;
    /** Conversation steps; each saves the whole message and tool-call lists, the info and `eventsPerStep` events. */
    steps: number;
    warmupSteps: number;
    eventsPerStep: number;
    toolCalls: { calls: number; perCall: number };
    /** Messages of the first `saveMessages` of a resumed long conversation. */
    firstSaveMessages: number;
    /** Appends awaited one by one, per measured run. */
    awaitedEvents: number;
    /** Events in the stream that one channel is read from. */
    streamEvents: number;
    /** Agents populated (info, 20 messages, 5 tool calls each), split over the measured runs. */
    agents: number;
    pageSize: number;
    queryRepeats: number;
  };
  /**
   * Workload j: `agents` agents × `steps` conversation steps each, `concurrency` agents at a time
   * (issue 20's 10,000 × 300 is `--large`; `--scale-agents N` sets another number of agents).
   */
  readonly scale: { agents: number; steps: number; concurrency: number };
  readonly eventMemory: {
    events: number;
    /** JSON size of each event (streamed text chunks): issue 21's memory target is for ~1.5 KB events. */
    eventBytes: number;
  };
}

const FULL: BenchProfile = {
  name: 'full',
  runs: 3,
  conversation: { steps: 300, warmupSteps: 30 },
  events: { inFlight: 20_000, awaitedPerRun: 500, readRuns: 9 },
  toolCalls: { calls: 50, perCall: 11 },
  fleet: {
    agents: 2_000,
    messagesPerAgent: 20,
    toolCallsPerAgent: 5,
    concurrency: 8,
    pageSize: 20,
    queryRepeats: 20,
    queryTargetMs: 5,
  },
  loadMessages: { messages: 2_000 },
  fork: { messages: 600, toolCalls: 150, copies: 20 },
  kv: {
    records: 50_000,
    namespaces: 10,
    timedSetsPerRun: 500,
    getsPerRun: 16_667,
    getConcurrency: 8,
    queryRepeats: 20,
  },
  scale: { agents: 80, steps: 300, concurrency: 8 },
  eventMemory: { events: 1_000_000, eventBytes: 1_536 },
  peer: {
    runs: 3,
    steps: 300,
    warmupSteps: 30,
    eventsPerStep: 6,
    toolCalls: { calls: 50, perCall: 11 },
    firstSaveMessages: 2_000,
    awaitedEvents: 500,
    streamEvents: 20_000,
    agents: 2_000,
    pageSize: 20,
    queryRepeats: 20,
  },
};

const QUICK: BenchProfile = {
  name: 'quick',
  runs: 3,
  conversation: { steps: 30, warmupSteps: 5 },
  events: { inFlight: 1_000, awaitedPerRun: 20, readRuns: 3 },
  toolCalls: { calls: 10, perCall: 11 },
  fleet: {
    agents: 60,
    messagesPerAgent: 20,
    toolCallsPerAgent: 5,
    concurrency: 8,
    pageSize: 5,
    queryRepeats: 3,
    queryTargetMs: 5,
  },
  loadMessages: { messages: 200 },
  fork: { messages: 60, toolCalls: 15, copies: 3 },
  kv: {
    records: 1_000,
    namespaces: 4,
    timedSetsPerRun: 20,
    getsPerRun: 100,
    getConcurrency: 8,
    queryRepeats: 3,
  },
  scale: { agents: 20, steps: 10, concurrency: 4 },
  eventMemory: { events: 5_000, eventBytes: 1_536 },
  // One run of each, small: the quick run proves the comparison works, in seconds.
  peer: {
    runs: 1,
    steps: 6,
    warmupSteps: 2,
    eventsPerStep: 6,
    toolCalls: { calls: 3, perCall: 5 },
    firstSaveMessages: 60,
    awaitedEvents: 5,
    streamEvents: 300,
    agents: 16,
    pageSize: 5,
    queryRepeats: 2,
  },
};

const LARGE: BenchProfile = {
  ...FULL,
  name: 'large',
  fleet: { ...FULL.fleet, agents: 50_000, queryTargetMs: 20 },
  scale: { ...FULL.scale, agents: 10_000 },
};

const MEDIUM: BenchProfile = {
  ...FULL,
  name: 'medium',
  peer: {
    ...FULL.peer,
    steps: 100,
    warmupSteps: 10,
    toolCalls: { calls: 20, perCall: 11 },
    awaitedEvents: 200,
    agents: 600,
  },
};

/** The profile for the command-line flags (at most one of them). */
export function benchProfile(options: { quick?: boolean; large?: boolean; medium?: boolean }): BenchProfile {
  const chosen = [
    options.quick && '--quick',
    options.large && '--large',
    options.medium && '--medium',
  ].filter(Boolean);
  if (chosen.length > 1) throw new Error(`${chosen.join(' and ')} cannot be combined`);
  return options.quick ? QUICK : options.large ? LARGE : options.medium ? MEDIUM : FULL;
}
