import { MAX_JSON_DEPTH } from '../../../src/json-codec.js';
import type { ExtendedStore, Message, Timeline } from '../../../src/types.js';
import { checkEqual, checkRejects, collect } from '../../runner/assertions.js';
import {
  agentInfo,
  compressionRecord,
  conversation,
  historyWindow,
  mediaRecord,
  nestedValue,
  recoveredFile,
  snapshot,
  textMessage,
  timeline,
  todoSnapshot,
  toolCall,
} from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

function cyclic(): unknown {
  const a: Record<string, unknown> = { name: 'a' };
  a.self = { back: a };
  return a;
}

const BAD_VALUES: Array<[string, () => unknown]> = [
  ['function', () => () => 1],
  ['bigint', () => 10n],
  ['cycle', cyclic],
  ['nan', () => Number.NaN],
  ['infinity', () => Number.POSITIVE_INFINITY],
  ['symbol', () => Symbol('s')],
  ['map', () => new Map([['a', 1]])],
];

/** A conversation whose last message carries `bad` deep inside a tool input. */
function poisoned(bad: unknown): Message[] {
  return [
    ...conversation(3),
    {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'toolu_bad', name: 'probe', input: { deep: [{ bad }] } }],
    },
  ];
}

function badMessageCase(name: string, make: () => unknown): Omit<StoreCase, 'id'> & { id: string } {
  return {
    id: `messages.${name}`,
    title: `a message holding a ${name} is refused with a ValidationError (a TypeError) and the stored conversation is unchanged`,
    run: async (ctx) => {
      const id = ctx.agentId('bad');
      await ctx.store.saveMessages(id, conversation(2));
      await checkRejects(
        () => ctx.store.saveMessages(id, poisoned(make())),
        'KODE_VALIDATION',
        `saveMessages(${name})`,
      );
      checkEqual(await ctx.store.loadMessages(id), conversation(2), 'stored conversation');
    },
  };
}

/** `save(store, id, bad)` must reject with KODE_VALIDATION and `load` must still return `expected`. */
function refusedCase(
  id: string,
  title: string,
  seed: (s: ExtendedStore, agentId: string) => Promise<unknown>,
  save: (s: ExtendedStore, agentId: string) => Promise<unknown>,
  load: (s: ExtendedStore, agentId: string) => Promise<unknown>,
  expected: unknown,
): Omit<StoreCase, 'id'> & { id: string } {
  return {
    id,
    title,
    run: async (ctx: CaseContext) => {
      const agent = ctx.agentId('bad');
      await seed(ctx.store, agent);
      await checkRejects(() => save(ctx.store, agent), 'KODE_VALIDATION', id);
      checkEqual(await load(ctx.store, agent), expected, `${id}: stored value`);
    },
  };
}

const none = async () => undefined;

/** An assistant message nesting `depth` levels: message, content array, block, then the tool input. */
function deepMessage(depth: number): Message {
  return {
    role: 'assistant',
    content: [{ type: 'tool_use', id: 'toolu_deep', name: 'probe', input: nestedValue(depth - 3) }],
  };
}

/** A timeline entry nesting `depth` levels: the entry, its event, then the event's `data`. */
function deepTimeline(seq: number, depth: number): Timeline {
  return timeline(seq, 'monitor', { data: nestedValue(depth - 2) });
}

const TOO_DEEP = MAX_JSON_DEPTH + 1;

export const badInputCases: StoreCase[] = defineCases('bad-input', [
  ...BAD_VALUES.map(([name, make]) => badMessageCase(name, make)),
  {
    id: 'messages.undefined-array-item',
    title: 'a message with an undefined array item is refused (JSON would turn it into null)',
    run: async (ctx) => {
      const id = ctx.agentId('bad');
      await ctx.store.saveMessages(id, conversation(1));
      await checkRejects(
        () => ctx.store.saveMessages(id, poisoned([1, undefined, 3])),
        'KODE_VALIDATION',
        'save',
      );
      checkEqual(await ctx.store.loadMessages(id), conversation(1), 'stored conversation');
    },
  },
  {
    id: 'messages.not-an-array',
    title: 'saveMessages with something other than an array is refused with a ValidationError',
    run: async (ctx) => {
      const id = ctx.agentId('bad');
      await ctx.store.saveMessages(id, conversation(1));
      await checkRejects(
        () => ctx.store.saveMessages(id, { 0: textMessage('user', 'x') } as unknown as Message[]),
        'KODE_VALIDATION',
        'saveMessages(object)',
      );
      checkEqual(await ctx.store.loadMessages(id), conversation(1), 'stored conversation');
    },
  },
  {
    id: 'messages.first-save-refused',
    title: 'a refused first save leaves nothing behind (the agent does not exist)',
    run: async (ctx) => {
      const id = ctx.agentId('bad');
      await checkRejects(() => ctx.store.saveMessages(id, poisoned(10n)), 'KODE_VALIDATION', 'saveMessages');
      checkEqual(await ctx.store.loadMessages(id), [], 'messages');
      checkEqual(await ctx.store.exists(id), false, 'exists');
    },
  },
  refusedCase(
    'toolcalls.bigint',
    'a tool-call record holding a BigInt is refused and the stored records are unchanged',
    (s, a) => s.saveToolCallRecords(a, [toolCall('t1')]),
    (s, a) => s.saveToolCallRecords(a, [toolCall('t1'), toolCall('t2', { result: 5n })]),
    (s, a) => s.loadToolCallRecords(a),
    [toolCall('t1')],
  ),
  refusedCase(
    'info.cycle',
    'an AgentInfo holding a cycle is refused and the stored info is unchanged',
    (s, a) => s.saveInfo(a, agentInfo(a)),
    (s, a) => s.saveInfo(a, agentInfo(a, { metadata: { loop: cyclic() } })),
    (s, a) => s.loadInfo(a).then((info) => info?.metadata),
    agentInfo('').metadata,
  ),
  refusedCase(
    'todos.nan',
    'a todo snapshot holding NaN is refused and the stored todos are unchanged',
    (s, a) => s.saveTodos(a, todoSnapshot(1)),
    (s, a) => s.saveTodos(a, { ...todoSnapshot(2), updatedAt: Number.NaN }),
    (s, a) => s.loadTodos(a),
    todoSnapshot(1),
  ),
  refusedCase(
    'snapshot.function',
    'a snapshot holding a function is refused and nothing is saved',
    none,
    (s, a) => s.saveSnapshot(a, { ...snapshot('s1', '2026-11-22T15:32:16.863Z'), metadata: { fn: () => 1 } }),
    (s, a) => s.listSnapshots(a),
    [],
  ),
  refusedCase(
    'history.bigint',
    'a history window holding a BigInt is refused and nothing is appended',
    (s, a) => s.saveHistoryWindow(a, historyWindow('w1')),
    (s, a) => s.saveHistoryWindow(a, { ...historyWindow('w2'), timestamp: 1n as unknown as number }),
    (s, a) => s.loadHistoryWindows(a).then((w) => w.map((x) => x.id)),
    ['w1'],
  ),
  refusedCase(
    'compression.infinity',
    'a compression record holding Infinity is refused and nothing is appended',
    none,
    (s, a) => s.saveCompressionRecord(a, { ...compressionRecord('c1'), ratio: Number.POSITIVE_INFINITY }),
    (s, a) => s.loadCompressionRecords(a),
    [],
  ),
  refusedCase(
    'recovered.symbol',
    'a recovered file holding a symbol is refused and nothing is appended',
    none,
    (s, a) => s.saveRecoveredFile(a, { ...recoveredFile('/a'), content: Symbol('x') as unknown as string }),
    (s, a) => s.loadRecoveredFiles(a),
    [],
  ),
  refusedCase(
    'media.nan',
    'a media cache holding NaN is refused and the stored cache is unchanged',
    (s, a) => s.saveMediaCache(a, [mediaRecord('k1')]),
    (s, a) => s.saveMediaCache(a, [mediaRecord('k2', { sizeBytes: Number.NaN })]),
    (s, a) => s.loadMediaCache(a),
    [mediaRecord('k1')],
  ),
  {
    id: 'events.function-dropped-bigint-refused',
    title:
      'an event with a function field is stored without it; one with a BigInt is refused and not appended',
    run: async (ctx) => {
      const id = ctx.agentId('ev');
      await ctx.store.appendEvent(id, timeline(1, 'monitor', { callback: () => 1 }));
      await checkRejects(
        () => ctx.store.appendEvent(id, timeline(2, 'monitor', { size: 2n })),
        'KODE_VALIDATION',
        'BigInt event',
      );
      checkEqual(await collect(ctx.store.readEvents(id)), [timeline(1, 'monitor')], 'events');
    },
  },
  {
    id: 'events.malformed-timeline-refused',
    title:
      'a timeline without a numeric bookmark.seq or a string event.channel is refused (in every mode) and not appended',
    run: async (ctx) => {
      const id = ctx.agentId('ev-shape');
      await ctx.store.appendEvent(id, timeline(1, 'progress'));
      const malformed: unknown[] = [
        null,
        { cursor: 2, event: { channel: 'progress', type: 'x' } },
        { cursor: 2, bookmark: { seq: '2', timestamp: 1 }, event: { channel: 'progress', type: 'x' } },
        { cursor: 2, bookmark: { seq: Number.NaN, timestamp: 1 }, event: { channel: 'progress', type: 'x' } },
        { cursor: 2, bookmark: { seq: 2, timestamp: 1 }, event: { type: 'x' } },
        { cursor: 2, bookmark: { seq: 2, timestamp: 1 } },
      ];
      for (const entry of malformed) {
        await checkRejects(
          () => ctx.store.appendEvent(id, entry as never),
          'KODE_VALIDATION',
          `appendEvent(${JSON.stringify(entry)})`,
        );
      }
      checkEqual(await collect(ctx.store.readEvents(id)), [timeline(1, 'progress')], 'events');
    },
  },
  {
    id: 'depth.messages',
    title: `a message nesting ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH) round-trips; one level more is refused with a ValidationError and the stored conversation is unchanged`,
    run: async (ctx) => {
      const id = ctx.agentId('deep');
      const atLimit = [...conversation(1), deepMessage(MAX_JSON_DEPTH)];
      await ctx.store.saveMessages(id, atLimit);
      checkEqual(await ctx.store.loadMessages(id), atLimit, 'messages at the limit');
      await checkRejects(
        () => ctx.store.saveMessages(id, [...atLimit, deepMessage(TOO_DEEP)]),
        'KODE_VALIDATION',
        `saveMessages(${TOO_DEEP} levels)`,
      );
      checkEqual(await ctx.store.loadMessages(id), atLimit, 'stored conversation');
    },
  },
  {
    id: 'depth.events',
    title: `an event nesting ${MAX_JSON_DEPTH} levels is appended and read back; one level more is refused and not appended`,
    run: async (ctx) => {
      const id = ctx.agentId('deep-ev');
      await ctx.store.appendEvent(id, deepTimeline(1, MAX_JSON_DEPTH));
      await checkRejects(
        () => ctx.store.appendEvent(id, deepTimeline(2, TOO_DEEP)),
        'KODE_VALIDATION',
        `appendEvent(${TOO_DEEP} levels)`,
      );
      checkEqual(await collect(ctx.store.readEvents(id)), [deepTimeline(1, MAX_JSON_DEPTH)], 'events');
    },
  },
  {
    id: 'depth.far-too-deep',
    title:
      'values nested 100,000 levels deep are refused with a ValidationError (not a stack overflow) and leave nothing behind',
    run: async (ctx) => {
      const id = ctx.agentId('abyss');
      const depth = 100_000;
      await checkRejects(
        () => ctx.store.saveMessages(id, [deepMessage(depth)]),
        'KODE_VALIDATION',
        'saveMessages',
      );
      await checkRejects(
        () => ctx.store.appendEvent(id, deepTimeline(1, depth)),
        'KODE_VALIDATION',
        'appendEvent',
      );
      await checkRejects(
        () => ctx.store.saveInfo(id, agentInfo(id, { metadata: nestedValue(depth) })),
        'KODE_VALIDATION',
        'saveInfo',
      );
      checkEqual(await ctx.store.exists(id), false, 'exists');
    },
  },
  refusedCase(
    'depth.info',
    `an AgentInfo nesting more than ${MAX_JSON_DEPTH} levels is refused and the stored info is unchanged`,
    (s, a) => s.saveInfo(a, agentInfo(a)),
    (s, a) => s.saveInfo(a, agentInfo(a, { metadata: nestedValue(TOO_DEEP - 1) })),
    (s, a) => s.loadInfo(a).then((info) => info?.metadata),
    agentInfo('').metadata,
  ),
  refusedCase(
    'depth.toolcalls',
    `a tool-call record nesting more than ${MAX_JSON_DEPTH} levels is refused and the stored records are unchanged`,
    (s, a) => s.saveToolCallRecords(a, [toolCall('t1')]),
    (s, a) =>
      s.saveToolCallRecords(a, [toolCall('t1'), toolCall('t2', { input: nestedValue(TOO_DEEP - 1) })]),
    (s, a) => s.loadToolCallRecords(a),
    [toolCall('t1')],
  ),
  refusedCase(
    'depth.snapshot',
    `a snapshot nesting more than ${MAX_JSON_DEPTH} levels is refused and nothing is saved`,
    none,
    (s, a) =>
      s.saveSnapshot(a, {
        ...snapshot('s1', '2026-11-22T15:32:16.863Z'),
        metadata: nestedValue(TOO_DEEP - 1),
      }),
    (s, a) => s.listSnapshots(a),
    [],
  ),
  {
    id: 'fork.id-too-long-refused',
    title:
      'batchFork of an agent whose id leaves no room for a fork id is refused with a ValidationError and creates nothing',
    run: async (ctx) => {
      const id = ctx.agentId('long').padEnd(1010, 'L');
      await ctx.store.saveMessages(id, conversation(2));
      const before = await ctx.store.list(id);
      await checkRejects(
        () => ctx.store.batchFork(id, 2),
        'KODE_VALIDATION',
        'batchFork of a 1010-character id',
      );
      checkEqual(await ctx.store.list(id), before, 'agents under the long id');
      checkEqual(await ctx.store.loadMessages(id), conversation(2), 'source conversation');
    },
  },
  {
    id: 'list.prefix-that-no-id-can-have',
    title: 'list() with a prefix holding a lone surrogate or NUL matches nothing (ids never hold them)',
    run: async (ctx) => {
      const id = `${ctx.agentId('emoji')}😀`;
      await ctx.store.saveMessages(id, conversation(1));
      checkEqual(await ctx.store.list(id.slice(0, -1)), [], 'prefix ending in a lone high surrogate');
      checkEqual(await ctx.store.list(`${id}\u0000`), [], 'prefix with NUL');
      checkEqual(await ctx.store.list(id), [id], 'the whole id');
    },
  },
  {
    id: 'events.malformed-read-options-refused',
    title:
      'readEvents refuses a since without a numeric seq and a non-string channel, instead of matching nothing',
    run: async (ctx) => {
      const id = ctx.agentId('ev-opts');
      await ctx.store.appendEvent(id, timeline(1, 'progress'));
      await checkRejects(
        () => collect(ctx.store.readEvents(id, { since: { seq: 'x' } as never })),
        'KODE_VALIDATION',
        'since.seq a string',
      );
      await checkRejects(
        () => collect(ctx.store.readEvents(id, { channel: 7 as never })),
        'KODE_VALIDATION',
        'channel a number',
      );
    },
  },
  {
    id: 'errors-are-rejections',
    title: 'bad input surfaces as a rejected promise, never a synchronous throw',
    run: async (ctx) => {
      const id = ctx.agentId('async');
      await checkRejects(
        () =>
          ctx.store.saveMessages(
            id,
            poisoned(() => 1),
          ),
        'KODE_VALIDATION',
        'saveMessages',
      );
      await checkRejects(() => ctx.store.saveInfo('', agentInfo('')), 'KODE_VALIDATION', 'saveInfo');
      if (ctx.implements('queryable')) {
        await checkRejects(
          () => ctx.store.queryMessages({ sortBy: 'nope' } as never),
          'KODE_QUERY',
          'queryMessages',
        );
      }
      await checkRejects(() => ctx.store.loadSnapshot('\u0000', 's'), 'KODE_VALIDATION', 'loadSnapshot');
    },
  },
  {
    id: 'error-names-operation',
    title: 'a ValidationError names the operation and the agent it happened in',
    run: async (ctx) => {
      const id = ctx.agentId('named');
      const error = (await checkRejects(
        () => ctx.store.saveMessages(id, poisoned(10n)),
        'KODE_VALIDATION',
        'saveMessages',
      )) as Error & { operation?: string; agentId?: string };
      checkEqual([error.operation, error.agentId], ['saveMessages', id], '[operation, agentId]');
    },
  },
]);
