import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sessionFields, toSessionInfo } from '../../src/agent/record-fields.js';
import type { AgentInfo } from '../../src/types.js';
import { oddSessionInfos, sessionsOf } from '../helpers/session-infos.js';

/** What a page gives from the stored session text: the store decodes it and calls `toSessionInfo`. */
const fromSessionJson = (info: AgentInfo) =>
  toSessionInfo(info.agentId, JSON.parse(sessionFields(info).sessionJson) as Partial<AgentInfo>);

describe('sessionFields(info).sessionJson', () => {
  it('holds exactly the session toSessionInfo makes, without the agent id', () => {
    const info = {
      agentId: 'a',
      templateId: 't',
      createdAt: '2026-01-01T00:00:00.000Z',
      lineage: ['x'],
      configVersion: 'v1',
      messageCount: 4,
      lastSfpIndex: 3,
      breakpoint: 'TOOL_PENDING',
      metadata: { userId: 'u' },
    } as AgentInfo;
    expect(JSON.parse(sessionFields(info).sessionJson)).toEqual({
      templateId: 't',
      createdAt: '2026-01-01T00:00:00.000Z',
      messageCount: 4,
      lastSfpIndex: 3,
      breakpoint: 'TOOL_PENDING',
    });
    const { breakpoint: _, ...withoutBreakpoint } = info;
    expect(sessionFields(withoutBreakpoint).sessionJson).toBe(
      '{"templateId":"t","createdAt":"2026-01-01T00:00:00.000Z","messageCount":4,"lastSfpIndex":3}',
    );
  });

  it('reads back as the same session as the whole saved info, for infos of odd shapes', () => {
    const infos = oddSessionInfos('odd-', 'tpl');
    const expected = sessionsOf(infos);
    for (const info of infos) expect(fromSessionJson(info), info.agentId).toEqual(expected.get(info.agentId));
  });

  it('reads back as the same session as the whole saved info, for any JSON in the session fields', () => {
    const field = fc.option(fc.jsonValue(), { nil: undefined });
    const info = fc.record(
      {
        templateId: field,
        createdAt: field,
        messageCount: field,
        lastSfpIndex: field,
        breakpoint: field,
        other: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(info, (partial) => {
        const saved = { agentId: 'p', ...partial } as unknown as AgentInfo;
        expect(fromSessionJson(saved)).toEqual(sessionsOf([saved]).get('p'));
      }),
    );
  });
});
