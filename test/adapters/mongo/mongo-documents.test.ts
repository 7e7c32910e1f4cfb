import { BSON } from 'mongodb';
import { describe, expect, it } from 'vitest';
import {
  assertFitsInDocument,
  bsonSize,
  jsonArrayItems,
  MAX_STORED_DOCUMENT_BYTES,
  readJson,
  toEventDocument,
  toInfoDocument,
  toMediaCacheDocument,
  toMessageDocument,
  toPositionedDocument,
  toSnapshotDocument,
  toToolCallDocument,
} from '../../../adapters/mongo/mongo-documents.js';
import { fixtureSample } from '../../../conformance/store/fixture-sample.js';
import { sessionFields } from '../../../src/agent/record-fields.js';
import { encodeJson } from '../../../src/json-codec.js';
import type { AgentInfo, Message, Timeline, ToolCallRecord } from '../../../src/types.js';
import { eventFieldsOf, messageFieldsOf, toolCallFieldsOf } from '../../helpers/record-fields.js';

/**
 * The document mapping, checked without a server: values go through
 * `encodeJson`, into a document, through the real BSON serializer and parser
 * of the driver (what travels to and from the server), and back out with
 * `readJson`. What comes back must be the same value, with the same key order.
 */

/** What the server would hand back: the document serialised to BSON and parsed again. */
function throughBson<T extends object>(doc: T): Record<string, unknown> {
  return BSON.deserialize(BSON.serialize(doc));
}

/** Same value and same key order (deep equality alone ignores order). */
function expectExactly(actual: unknown, expected: unknown): void {
  expect(actual).toEqual(expected);
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));
}

const HOSTILE = {
  'a.b': 'dotted key',
  $where: 'dollar key',
  $: 'just a dollar',
  '': 'empty key',
  'nul\u0000key': 'NUL inside a key',
  '😀🇺🇳👩‍👩‍👧': 'emoji key',
  // A computed key defines an own property; a plain `__proto__:` would set the prototype.
  ['__proto__']: 'an own property named __proto__',
  nested: { $set: { 'x.y': [1, { $inc: 2 }] } },
  text: 'NUL \u0000 inside, emoji 😀, CJK 漢字, RTL עברית, U+2028 \u2028, lone \ud800 surrogate',
  numbers: [2 ** 53 - 1, -(2 ** 53 - 1), 1e308, 5e-324, 0.1 + 0.2, 1, -1, 2 ** 31, -(2 ** 31) - 1],
  falsy: [null, 0, false, '', [], {}],
  zKeyFirst: {
    z: 1,
    a: 2,
    m: 3,
    '10': 'numeric-looking keys move first in JS objects, as JSON.parse does too',
  },
};

describe('values round-trip exactly through a document and BSON', () => {
  it('hostile keys (".", "$", NUL, emoji, __proto__), text and numbers come back identical, in key order', () => {
    const value = JSON.parse(JSON.stringify(HOSTILE));
    const message = {
      role: 'user',
      content: [{ type: 'tool_use', id: 't', name: 'n', input: value }],
    } as Message;
    const json = encodeJson(message, 'strict');
    const back = readJson<Message>(
      throughBson(toMessageDocument('agent', 0, json, messageFieldsOf(message), 1)),
    );
    expectExactly(back, message);
    const input = (back.content[0] as { input: Record<string, unknown> }).input;
    expect(Object.hasOwn(input, '__proto__')).toBe(true);
    expect(input['nul\u0000key']).toBe('NUL inside a key');
    expect((input.numbers as number[])[0]).toBe(Number.MAX_SAFE_INTEGER);
    expect((input.numbers as number[])[2]).toBe(1e308);
    expect((input.numbers as number[])[3]).toBe(5e-324);
  });

  it("-0 loads back as 0: JSON has no negative zero (the SDK's own JSON store behaves the same)", () => {
    const json = encodeJson({ value: -0 }, 'strict');
    const back = readJson<{ value: number }>(throughBson(toPositionedDocument('a', 1, json)));
    expect(Object.is(back.value, 0)).toBe(true);
  });

  it('a 1 MiB text block round-trips', () => {
    const text = 'x🙂\u0000'.repeat(349_526).slice(0, 1024 * 1024);
    const message = { role: 'assistant', content: [{ type: 'text', text }] } as Message;
    const json = encodeJson(message, 'strict');
    const back = readJson<Message>(throughBson(toMessageDocument('a', 0, json, messageFieldsOf(message), 1)));
    expect((back.content[0] as { text: string }).text).toBe(text);
  });

  it('real SDK data (messages, tool calls, info, events, snapshot, history) round-trips unchanged', () => {
    for (const agent of fixtureSample.agents) {
      agent.messages.forEach((message, i) => {
        const doc = toMessageDocument(
          agent.agentId,
          i,
          encodeJson(message, 'strict'),
          messageFieldsOf(message),
          1,
        );
        expectExactly(readJson(throughBson(doc)), message);
      });
      agent.toolCalls.forEach((record, i) => {
        const doc = toToolCallDocument(
          agent.agentId,
          i,
          encodeJson(record, 'strict'),
          toolCallFieldsOf(record),
        );
        expectExactly(readJson(throughBson(doc)), record);
      });
      const infoDoc = toInfoDocument(
        agent.agentId,
        encodeJson(agent.info, 'strict'),
        sessionFields(agent.info),
        5,
      );
      expectExactly(readJson(throughBson(infoDoc)), agent.info);
      for (const timeline of agent.events) {
        const doc = toEventDocument(agent.agentId, 1, encodeJson(timeline, 'event'), eventFieldsOf(timeline));
        expectExactly(readJson(throughBson(doc)), timeline);
      }
    }
    const { snapshot, historyWindow } = fixtureSample;
    expectExactly(
      readJson(throughBson(toSnapshotDocument('a', snapshot.id, encodeJson(snapshot, 'strict')))),
      snapshot,
    );
    expectExactly(
      readJson(throughBson(toPositionedDocument('a', 1, encodeJson(historyWindow, 'strict')))),
      historyWindow,
    );
  });

  it('why the value is stored as JSON text: BSON cannot hold a key containing NUL at all', () => {
    expect(() => BSON.serialize({ value: { 'nul\u0000key': 1 } })).toThrow();
    expect(() =>
      BSON.serialize(toMediaCacheDocument('a', 0, encodeJson({ 'nul\u0000key': 1 }, 'strict'))),
    ).not.toThrow();
  });
});

describe('extracted fields', () => {
  it('a message document carries agentId, position, first-saved time, role and distinct block types', () => {
    const message: Message = {
      role: 'assistant',
      content: [
        { type: 'text', text: 'a' },
        { type: 'tool_use', id: 't', name: 'n', input: {} },
        { type: 'text', text: 'b' },
      ],
    };
    expect(toMessageDocument('ag', 3, '{}', messageFieldsOf(message), 1234)).toEqual({
      agentId: 'ag',
      index: 3,
      createdAt: 1234,
      role: 'assistant',
      contentTypes: ['text', 'tool_use'],
      json: '{}',
    });
    // A role that is not a string is '' (AgentStore's MessageFields), as on every backend.
    expect(
      toMessageDocument('ag', 0, '{}', messageFieldsOf({ content: 'odd' } as unknown as Message), 1).role,
    ).toBe('');
  });

  it('a tool-call document carries the record id, name, state, error and approval flags and both times', () => {
    const record = fixtureSample.agents[0]?.toolCalls[1] as ToolCallRecord;
    expect(toToolCallDocument('ag', 1, '{}', toolCallFieldsOf(record))).toEqual({
      agentId: 'ag',
      index: 1,
      toolCallId: record.id,
      name: 'fs_write',
      state: 'DENIED',
      isError: true,
      hasApproval: true,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      json: '{}',
    });
    const bare = { id: 'x', name: 'n', state: 'PENDING', createdAt: 5 } as unknown as ToolCallRecord;
    expect(toToolCallDocument('ag', 0, '{}', toolCallFieldsOf(bare))).toMatchObject({
      isError: false,
      hasApproval: false,
      updatedAt: 5,
    });
  });

  it('an info document is keyed by agent id and carries the session, its sort and its filter fields', () => {
    const info: Partial<AgentInfo> = {
      agentId: 'x',
      templateId: 'tpl',
      createdAt: '2026-11-22T15:32:17.342+02:00',
      messageCount: 4,
      metadata: { userId: 'u-1' },
    };
    expect(toInfoDocument('ag', '{}', sessionFields(info), 99)).toEqual({
      _id: 'ag',
      templateId: 'tpl',
      createdAtMs: Date.parse('2026-11-22T13:32:17.342Z'),
      userId: 'u-1',
      messageCount: 4,
      updatedAt: 99,
      json: '{}',
      sessionJson:
        '{"templateId":"tpl","createdAt":"2026-11-22T15:32:17.342+02:00","messageCount":4,"lastSfpIndex":0}',
    });
    expect(toInfoDocument('ag', '{}', sessionFields({}), 1)).toMatchObject({
      templateId: '',
      createdAtMs: 0,
      userId: null,
    });
  });

  it('an event document carries the insertion counter, bookmark.seq and channel (null when absent)', () => {
    const timeline = fixtureSample.agents[0]?.events[3] as Timeline;
    expect(toEventDocument('ag', 17, '{}', eventFieldsOf(timeline))).toEqual({
      agentId: 'ag',
      seq: 17,
      bookmarkSeq: timeline.bookmark.seq,
      channel: timeline.event.channel,
      json: '{}',
    });
    expect(toEventDocument('ag', 1, '{}', eventFieldsOf({} as Timeline))).toMatchObject({
      bookmarkSeq: null,
      channel: null,
    });
  });
});

describe('size and corruption', () => {
  /** The JSON text that makes `{ _id: 'a', json }` exactly `bytes` long. */
  const textFor = (bytes: number) => 'x'.repeat(bytes - bsonSize({ _id: 'a', json: '' }));

  it('a document up to the limit fits; one byte more is a ValidationError naming the field and the limit', () => {
    const fits = textFor(MAX_STORED_DOCUMENT_BYTES);
    const document = (json: string) => () => ({ _id: 'a', json });
    expect(() => assertFitsInDocument(fits, 'messages[0]', {}, document(fits))).not.toThrow();
    const over = `${fits}x`;
    expect(() => assertFitsInDocument(over, 'messages[0]', {}, document(over))).toThrow(
      expect.objectContaining({
        code: 'KODE_VALIDATION',
        path: 'messages[0]',
        message: expect.stringMatching(/messages\[0\].*16777216/),
      }),
    );
  });

  it('counts what the document repeats of the value: a text that fits alone can make a document that does not', () => {
    const templateId = 'é'.repeat(Math.ceil(MAX_STORED_DOCUMENT_BYTES / 4) + 1);
    const info = { templateId, createdAt: '2026-01-01T00:00:00Z' } as unknown as AgentInfo;
    const json = JSON.stringify(info);
    expect(Buffer.byteLength(json)).toBeLessThan(MAX_STORED_DOCUMENT_BYTES);
    expect(() =>
      assertFitsInDocument(json, 'info', {}, () => toInfoDocument('a', json, sessionFields(info), 0)),
    ).toThrow(expect.objectContaining({ code: 'KODE_VALIDATION', path: 'info' }));
  });

  it('counts UTF-8 bytes, not characters', () => {
    const chars = Math.floor((MAX_STORED_DOCUMENT_BYTES - bsonSize({ _id: 'a', json: '' })) / 2);
    const document = (json: string) => () => ({ _id: 'a', json });
    const fits = 'é'.repeat(chars);
    const over = 'é'.repeat(chars + 1);
    expect(() => assertFitsInDocument(fits, 'info', {}, document(fits))).not.toThrow();
    expect(() => assertFitsInDocument(over, 'info', {}, document(over))).toThrow(TypeError);
  });

  it('measures documents exactly as the driver encodes them', () => {
    const samples: object[] = [
      {},
      { a: 'é😀\u0000', n: 1, m: -(2 ** 31), big: 2 ** 31, half: 0.5, t: true, z: null, u: undefined },
      { list: ['x', 1, [2, { y: 'z' }]], nested: { s: '', d: new Date(0) } },
      toInfoDocument(
        'agent-é',
        '{}',
        sessionFields({ templateId: 't', metadata: { userId: 'u' } } as never),
        12,
      ),
      toMessageDocument(
        'a',
        3,
        '{"role":"user"}',
        messageFieldsOf({ role: 'user', content: [{ type: 'text', text: 'é' }] }),
        1,
      ),
    ];
    // The driver sends `undefined` as null (its ignoreUndefined option is off by default).
    for (const sample of samples) {
      expect(bsonSize(sample)).toBe(
        BSON.calculateObjectSize(sample as BSON.Document, { ignoreUndefined: false }),
      );
    }
  });

  it('a document without JSON text, or with unreadable text, is CorruptDataError, not a bare SyntaxError', () => {
    expect(() => readJson({ json: 7 })).toThrow(expect.objectContaining({ code: 'KODE_CORRUPT' }));
    expect(() => readJson(null)).toThrow(expect.objectContaining({ code: 'KODE_CORRUPT' }));
    expect(() => readJson({ json: '{"half": ' }, { operation: 'loadInfo', agentId: 'a' })).toThrow(
      expect.objectContaining({ code: 'KODE_CORRUPT', agentId: 'a' }),
    );
  });
});

describe('media cache entries from the array text AgentStore hands over', () => {
  it("splits only at the commas between items, giving each item's text exactly as it was", () => {
    const items = [
      '{"a":"x,y","b":[1,2,{"c":"]"}]}',
      '"quote \\" and backslash \\\\, comma"',
      '[[],{},"{[,"]',
      '-0',
      '{"k":"\\u0000,"}',
    ];
    expect(jsonArrayItems(`[${items.join(',')}]`)).toEqual(items);
    // -0 stays -0: parsing and re-encoding would have made it 0.
    expect(JSON.stringify(JSON.parse('-0'))).toBe('0');
  });

  it('an empty array has no items; JSON whitespace around items is left out', () => {
    expect(jsonArrayItems('[]')).toEqual([]);
    expect(jsonArrayItems(' [ ] ')).toEqual([]);
    expect(jsonArrayItems('[ 1 , {"a" : 2} ]')).toEqual(['1', '{"a" : 2}']);
  });

  it('encoded media cache records come back one by one', () => {
    const records = [{ key: 'a,b', url: 'https://x/"y"', meta: { n: [1, 2] } }, { key: 'z' }];
    const texts = records.map((record) => encodeJson(record, 'strict'));
    expect(jsonArrayItems(`[${texts.join(',')}]`)).toEqual(texts);
  });
});
