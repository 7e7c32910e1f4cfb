import type { Message, ToolCallRecord } from '../../../src/types.js';
import { check, checkEqual, collect, errorCode } from '../../runner/assertions.js';
import {
  agentInfo,
  asJson,
  fixture,
  fixtureAgents,
  mediaRecord,
  textMessage,
  timeline,
  toolCall,
  toolResultMessage,
  toolUseMessage,
} from '../sample-data.js';
import { type CaseContext, defineCases, type StoreCase } from '../store-case.js';

/** Saves `messages` and checks they load back exactly. */
async function roundTripMessages(ctx: CaseContext, messages: Message[], what: string): Promise<void> {
  const id = ctx.agentId('rt');
  await ctx.store.saveMessages(id, messages);
  checkEqual(await ctx.store.loadMessages(id), asJson(messages), what);
}

async function roundTripText(ctx: CaseContext, text: string, what: string): Promise<void> {
  await roundTripMessages(ctx, [textMessage('user', text)], what);
}

const ONE_MIB = 1024 * 1024;

function nested(depth: number): unknown {
  let value: unknown = { leaf: 'bottom', n: 0, ok: false };
  for (let i = 1; i <= depth; i++) value = { level: i, child: value, list: [i, { i }] };
  return value;
}

export const roundTripCases: StoreCase[] = [
  ...defineCases('messages.roundtrip', [
    {
      id: 'unicode',
      title: 'text with accents, RTL, combining marks and symbols loads back unchanged',
      run: (ctx) => roundTripText(ctx, 'Ünïcödé — ½ ∑ ∞ ≠ العربية עברית e\u0301 ñ Ω ™ ©', 'unicode text'),
    },
    {
      id: 'emoji',
      title: 'emoji, skin tones, ZWJ sequences and flags load back unchanged',
      run: (ctx) => roundTripText(ctx, '😀 👍🏽 👩‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 🤖✅', 'emoji'),
    },
    {
      id: 'cjk',
      title: 'CJK text (Chinese, Japanese, Korean) loads back unchanged',
      run: (ctx) => roundTripText(ctx, '审查代码 ✅ 日本語のテキスト 한국어 텍스트 𠜎𠜱𠝹', 'CJK'),
    },
    {
      id: 'astral-and-bmp-edges',
      title: 'characters at the edges of the planes (U+FFFF, U+10000, U+10FFFF, U+FEFF) load back unchanged',
      run: (ctx) => roundTripText(ctx, '\uFFFF \u{10000} \u{10FFFF} \uFEFFbom \uE000', 'plane edges'),
    },
    {
      id: 'lone-surrogate',
      title: 'a lone surrogate is either preserved exactly or refused with a ValidationError (never mangled)',
      run: async (ctx) => {
        const id = ctx.agentId('surrogate');
        const before = [textMessage('user', 'kept')];
        await ctx.store.saveMessages(id, before);
        const broken = [textMessage('user', 'high \uD83D alone, low \uDE00 alone')];
        try {
          await ctx.store.saveMessages(id, broken);
        } catch (error) {
          check(errorCode(error) === 'KODE_VALIDATION', `expected a ValidationError, got ${String(error)}`);
          checkEqual(await ctx.store.loadMessages(id), before, 'messages after the refused save');
          return;
        }
        checkEqual(await ctx.store.loadMessages(id), broken, 'lone surrogates');
      },
    },
    {
      id: 'nul-in-text',
      title: 'NUL (\\u0000) inside text loads back unchanged',
      run: (ctx) => roundTripText(ctx, 'before\u0000after\u0000\u0000end', 'NUL in text'),
    },
    {
      id: 'control-characters',
      title: 'control characters, U+2028/U+2029 and escapes load back unchanged',
      run: (ctx) =>
        roundTripText(ctx, 'tab\tcr\rlf\nbell\u0007bs\b ff\f \u2028 \u2029 \u001f \u007f', 'controls'),
    },
    {
      id: 'quotes-and-backslashes',
      title: 'quotes, backslashes and SQL/regex metacharacters in text load back unchanged',
      run: (ctx) =>
        roundTripText(
          ctx,
          `'; DROP TABLE messages; -- "quoted" \\ \\\\ $1 ? %s %_ * .* {$gt: ""}`,
          'metachars',
        ),
    },
    {
      id: 'json-lookalike-strings',
      title: 'strings that look like JSON or numbers stay strings',
      run: (ctx) =>
        roundTripMessages(
          ctx,
          [
            toolUseMessage('toolu_str', 'probe', {
              a: 'null',
              b: '{}',
              c: '[1]',
              d: '123',
              e: '1e3',
              f: 'true',
              g: '',
            }),
          ],
          'JSON-looking strings',
        ),
    },
    {
      id: 'whitespace',
      title: 'leading, trailing and only-whitespace text is not trimmed',
      run: (ctx) =>
        roundTripMessages(
          ctx,
          [textMessage('user', '  padded  '), textMessage('assistant', ' '), textMessage('user', '\r\n\t')],
          'whitespace',
        ),
    },
    {
      id: 'falsy-values',
      title: 'null, 0, false, "", [] and {} inside a message load back as themselves',
      run: (ctx) =>
        roundTripMessages(
          ctx,
          [
            toolUseMessage('toolu_falsy', 'probe', {
              zero: 0,
              no: false,
              empty: '',
              nothing: null,
              list: [],
              obj: {},
              mixed: [0, false, '', null, [], {}],
            }),
            toolResultMessage('toolu_falsy', { ok: true, data: { falsy: [0, false, '', null] } }),
          ],
          'falsy values',
        ),
    },
    {
      id: 'nested-objects',
      title: 'deeply nested objects (60 levels) load back unchanged',
      run: (ctx) =>
        roundTripMessages(ctx, [toolUseMessage('toolu_deep', 'probe', nested(60))], 'nested objects'),
    },
    {
      id: 'one-mebibyte-block',
      title: 'a 1 MiB text block loads back unchanged',
      run: (ctx) => {
        const block = 'abcdefghijklmnopqrstuvwxyz0123456789-é😀'.repeat(ONE_MIB / 40).slice(0, ONE_MIB);
        return roundTripMessages(
          ctx,
          [textMessage('user', block), textMessage('assistant', 'ok')],
          '1 MiB block',
        );
      },
    },
    {
      id: 'absent-optional-fields',
      title: 'optional fields that were absent stay absent (not null, not undefined keys)',
      run: async (ctx) => {
        const id = ctx.agentId('absent');
        const messages: Message[] = [
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'x' }] },
          { role: 'assistant', content: [{ type: 'text', text: 'no metadata key' }] },
        ];
        await ctx.store.saveMessages(id, messages);
        const loaded = await ctx.store.loadMessages(id);
        checkEqual(loaded, messages, 'messages without optional fields');
        check(!('metadata' in (loaded[1] as object)), 'an absent metadata field came back as a key');
        check(!('is_error' in (loaded[0]?.content[0] as object)), 'an absent is_error came back as a key');
      },
    },
    {
      id: 'undefined-properties-dropped',
      title: 'a property whose value is undefined is stored as absent, as JSON does',
      run: async (ctx) => {
        const id = ctx.agentId('undef');
        const message = {
          role: 'user',
          content: [{ type: 'text', text: 'x' }],
          metadata: undefined,
        } as Message;
        await ctx.store.saveMessages(id, [message]);
        const [loaded] = await ctx.store.loadMessages(id);
        checkEqual(loaded, { role: 'user', content: [{ type: 'text', text: 'x' }] }, 'message');
      },
    },
    {
      id: 'key-order',
      title: 'object keys keep their order (tool inputs and provider caches depend on it)',
      run: (ctx) =>
        roundTripMessages(
          ctx,
          [
            {
              role: 'assistant',
              content: [
                {
                  type: 'tool_use',
                  id: 'toolu_k',
                  name: 'probe',
                  input: { zeta: 1, alpha: 2, Mid: 3, _u: 4, a: 5 },
                },
              ],
              metadata: { transport: 'provider', content_blocks: [{ type: 'text', text: 'x' }] },
            } as Message,
            { content: [{ text: 'keys before type', type: 'text' }], role: 'user' } as unknown as Message,
          ],
          'key order',
        ),
    },
    {
      id: 'numbers',
      title: 'numbers load back as the same numbers (never strings, never rounded)',
      run: (ctx) =>
        roundTripMessages(
          ctx,
          [
            toolUseMessage('toolu_n', 'probe', {
              int: 42,
              negative: -7,
              float: 0.1,
              third: 1 / 3,
              big: Number.MAX_SAFE_INTEGER,
              small: Number.MIN_VALUE,
              exp: 1e21,
              tiny: 1.5e-10,
              ms: 1795361537586.0696,
            }),
          ],
          'numbers',
        ),
    },
    {
      id: 'empty-list',
      title: 'saving an empty conversation loads back []',
      run: async (ctx) => {
        const id = ctx.agentId('empty');
        await ctx.store.saveMessages(id, []);
        checkEqual(await ctx.store.loadMessages(id), [], 'empty conversation');
      },
    },
    {
      id: 'empty-content',
      title: 'a message with empty content loads back with empty content',
      run: (ctx) => roundTripMessages(ctx, [{ role: 'assistant', content: [] }], 'empty content'),
    },
    {
      id: 'duplicate-messages',
      title: 'identical messages in one conversation are all kept',
      run: (ctx) =>
        roundTripMessages(
          ctx,
          [textMessage('user', 'same'), textMessage('user', 'same'), textMessage('user', 'same')],
          'duplicates',
        ),
    },
    {
      id: 'fixture-conversations',
      title:
        'real SDK conversations (tool use, images, system and consecutive user messages) load back unchanged',
      run: async (ctx) => {
        for (const agent of fixtureAgents()) {
          const id = ctx.agentId('fx');
          await ctx.store.saveMessages(id, agent.messages);
          checkEqual(await ctx.store.loadMessages(id), agent.messages, `conversation of ${agent.agentId}`);
        }
      },
    },
    {
      id: 'isolated-from-caller-objects',
      title: 'changing a saved or loaded object afterwards does not change what is stored',
      run: async (ctx) => {
        const id = ctx.agentId('mut');
        const messages = [textMessage('user', 'original')];
        await ctx.store.saveMessages(id, messages);
        (messages[0]?.content[0] as { text: string }).text = 'changed after save';
        const loaded = await ctx.store.loadMessages(id);
        (loaded[0]?.content[0] as { text: string }).text = 'changed after load';
        loaded.push(textMessage('user', 'pushed'));
        checkEqual(await ctx.store.loadMessages(id), [textMessage('user', 'original')], 'stored messages');
      },
    },
  ]),
  ...defineCases('toolcalls.roundtrip', [
    {
      id: 'fixture-records',
      title: 'real SDK tool-call records (every state, approvals, audit trails) load back unchanged',
      run: async (ctx) => {
        for (const agent of fixtureAgents()) {
          const id = ctx.agentId('fx');
          await ctx.store.saveToolCallRecords(id, agent.toolCalls);
          checkEqual(await ctx.store.loadToolCallRecords(id), agent.toolCalls, `records of ${agent.agentId}`);
        }
      },
    },
    {
      id: 'key-order',
      title: 'record keys keep the order the SDK wrote them in (startedAt after auditTrail)',
      run: async (ctx) => {
        const id = ctx.agentId('keys');
        const record = { id: 'toolu_k', name: 'probe', input: { b: 1, a: 2 }, state: 'COMPLETED' } as Record<
          string,
          unknown
        >;
        Object.assign(record, {
          approval: { required: false },
          createdAt: 1,
          updatedAt: 2,
          auditTrail: [],
          startedAt: 1,
          result: { z: 0, y: '' },
          durationMs: 0,
          completedAt: 2,
        });
        await ctx.store.saveToolCallRecords(id, [record as unknown as ToolCallRecord]);
        checkEqual(await ctx.store.loadToolCallRecords(id), [record], 'record');
      },
    },
    {
      id: 'falsy-results',
      title: 'results 0, false, "" and null and durationMs 0 load back as themselves',
      run: async (ctx) => {
        const id = ctx.agentId('falsy');
        const records = [0, false, '', null].map((result, i) =>
          toolCall(`toolu_f${i}`, { result, durationMs: 0, isError: false, error: '' }),
        );
        await ctx.store.saveToolCallRecords(id, records);
        checkEqual(await ctx.store.loadToolCallRecords(id), records, 'records with falsy results');
      },
    },
    {
      id: 'absent-optional-fields',
      title: 'a record without result, error, isError or timings loads back without them',
      run: async (ctx) => {
        const id = ctx.agentId('absent');
        const record = toolCall('toolu_a', { state: 'PENDING' });
        await ctx.store.saveToolCallRecords(id, [record]);
        const [loaded] = await ctx.store.loadToolCallRecords(id);
        checkEqual(loaded, record, 'record');
        for (const key of ['result', 'error', 'isError', 'startedAt', 'completedAt', 'durationMs']) {
          check(!(key in (loaded as object)), `absent ${key} came back as a key`);
        }
      },
    },
    {
      id: 'numbers-stay-numbers',
      title: 'timestamps and durations load back as numbers, fractional ones unrounded',
      run: async (ctx) => {
        const id = ctx.agentId('num');
        const record = toolCall('toolu_n', {
          createdAt: 1795361537093,
          updatedAt: 1795361537113.5,
          durationMs: 0.25,
        });
        await ctx.store.saveToolCallRecords(id, [record]);
        const [loaded] = await ctx.store.loadToolCallRecords(id);
        checkEqual(loaded, record, 'record');
        check(typeof loaded?.createdAt === 'number', 'createdAt is not a number');
      },
    },
  ]),
  ...defineCases('info.roundtrip', [
    {
      id: 'fixture',
      title: 'real SDK AgentInfo (config in metadata, lineage, bookmark) loads back unchanged',
      run: async (ctx) => {
        const sample = fixture();
        for (const info of [...sample.agents.map((a) => a.info), sample.forkOfForkInfo]) {
          const id = ctx.agentId('fx');
          await ctx.store.saveInfo(id, info);
          checkEqual(await ctx.store.loadInfo(id), info, `info of ${info.agentId}`);
        }
      },
    },
    {
      id: 'timestamp-strings-unchanged',
      title: 'createdAt strings load back byte for byte (offsets and precision not normalised)',
      run: async (ctx) => {
        for (const createdAt of [
          '2026-11-22T15:32:16.863Z',
          '2026-11-22T16:32:16.863+01:00',
          '2026-11-22T15:32:16Z',
          '2026-11-22 15:32:16.863123',
          'not a date',
        ]) {
          const id = ctx.agentId('ts');
          const info = agentInfo(id, { createdAt });
          await ctx.store.saveInfo(id, info);
          checkEqual((await ctx.store.loadInfo(id))?.createdAt, createdAt, 'createdAt');
        }
      },
    },
    {
      id: 'numbers-and-falsy',
      title: 'messageCount 0, lastSfpIndex -1 and falsy metadata load back as themselves',
      run: async (ctx) => {
        const id = ctx.agentId('falsy');
        const info = agentInfo(id, {
          messageCount: 0,
          lastSfpIndex: -1,
          metadata: { zero: 0, no: false, empty: '', nothing: null, list: [] },
        });
        await ctx.store.saveInfo(id, info);
        checkEqual(await ctx.store.loadInfo(id), info, 'info');
      },
    },
  ]),
  ...defineCases('todos.roundtrip', [
    {
      id: 'fixture',
      title: 'a real SDK todo snapshot (CJK, emoji, multi-line notes) loads back unchanged',
      run: async (ctx) => {
        const todos = fixtureAgents().find((a) => a.todos)?.todos;
        check(todos, 'the fixture sample has a todo snapshot');
        const id = ctx.agentId('todos');
        await ctx.store.saveTodos(id, todos);
        checkEqual(await ctx.store.loadTodos(id), todos, 'todos');
      },
    },
  ]),
  ...defineCases('snapshots.roundtrip', [
    {
      id: 'fixture',
      title: 'a real SDK snapshot loads back unchanged, by id and in the list',
      run: async (ctx) => {
        const { snapshot } = fixture();
        const id = ctx.agentId('snap');
        await ctx.store.saveSnapshot(id, snapshot);
        checkEqual(await ctx.store.loadSnapshot(id, snapshot.id), snapshot, 'loadSnapshot');
        checkEqual(await ctx.store.listSnapshots(id), [snapshot], 'listSnapshots');
      },
    },
  ]),
  ...defineCases('history.roundtrip', [
    {
      id: 'fixture-window',
      title: 'a real SDK history window (messages and events) loads back unchanged',
      run: async (ctx) => {
        const { historyWindow } = fixture();
        const id = ctx.agentId('hist');
        await ctx.store.saveHistoryWindow(id, historyWindow);
        checkEqual(await ctx.store.loadHistoryWindows(id), [historyWindow], 'history windows');
      },
    },
    {
      id: 'fixture-compression',
      title: 'a real SDK compression record loads back unchanged',
      run: async (ctx) => {
        const { compressionRecord } = fixture();
        const id = ctx.agentId('comp');
        await ctx.store.saveCompressionRecord(id, compressionRecord);
        checkEqual(await ctx.store.loadCompressionRecords(id), [compressionRecord], 'compression records');
      },
    },
    {
      id: 'fixture-recovered-file',
      title: 'a recovered file with a fractional mtime loads back unchanged',
      run: async (ctx) => {
        const { recoveredFile } = fixture();
        const id = ctx.agentId('rec');
        await ctx.store.saveRecoveredFile(id, recoveredFile);
        checkEqual(await ctx.store.loadRecoveredFiles(id), [recoveredFile], 'recovered files');
      },
    },
  ]),
  ...defineCases('media.roundtrip', [
    {
      id: 'fixture',
      title: 'a real SDK media cache loads back unchanged, optional fields absent where they were',
      run: async (ctx) => {
        const media = fixtureAgents().find((a) => a.mediaCache)?.mediaCache;
        check(media, 'the fixture sample has a media cache');
        const records = [...media, mediaRecord('no-file-id', { fileId: undefined, fileUri: 'gs://b/k' })];
        const id = ctx.agentId('media');
        await ctx.store.saveMediaCache(id, records);
        checkEqual(await ctx.store.loadMediaCache(id), asJson(records), 'media cache');
      },
    },
  ]),
  ...defineCases('events.roundtrip', [
    {
      id: 'fixture',
      title: 'real SDK event streams (all channels, reused seqs, duplicates) read back unchanged, in order',
      run: async (ctx) => {
        for (const agent of fixtureAgents().filter((a) => a.events.length > 0)) {
          const id = ctx.agentId('fx');
          for (const entry of agent.events) await ctx.store.appendEvent(id, entry);
          checkEqual(await collect(ctx.store.readEvents(id)), agent.events, `events of ${agent.agentId}`);
        }
      },
    },
    {
      id: 'unicode-and-nul',
      title: 'event text with emoji, CJK and NUL reads back unchanged',
      run: async (ctx) => {
        const id = ctx.agentId('ev');
        const entry = timeline(1, 'progress', { delta: '😀 审查 \u0000 end \uFFFF' });
        await ctx.store.appendEvent(id, entry);
        checkEqual(await collect(ctx.store.readEvents(id)), [entry], 'event');
      },
    },
  ]),
];
