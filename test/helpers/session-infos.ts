import { toSessionInfo } from '../../src/agent/record-fields.js';
import type { AgentInfo, SessionInfo } from '../../src/types.js';

/**
 * Infos whose sessions are easy to get wrong, all of template `templateId`
 * and with ids starting with `prefix`: with and without a breakpoint (a
 * null one too), session fields missing, null or of odd types, a
 * `metadata` holding fields of the same names, and text that JSON escapes.
 */
export function oddSessionInfos(prefix: string, templateId: string): AgentInfo[] {
  const info = (name: string, extra: Record<string, unknown>) =>
    ({
      agentId: `${prefix}${name}`,
      templateId,
      createdAt: '2026-01-01T00:00:00.000Z',
      lineage: [],
      configVersion: 'v1',
      messageCount: 3,
      lastSfpIndex: 2,
      metadata: { breakpoint: 'nested, not the session breakpoint', templateId: 'nested' },
      // What makes the SDK's info large: the agent's whole configuration.
      config: {
        tools: Array.from({ length: 20 }, (_, i) => ({ name: `tool_${i}`, schema: { type: 'object' } })),
      },
      ...extra,
    }) as unknown as AgentInfo;
  return [
    info('a-plain', {}),
    info('b-breakpoint', { breakpoint: 'STREAMING_MODEL' }),
    info('c-null-breakpoint', { breakpoint: null }),
    info('d-odd-values', {
      createdAt: 'zone-less \u0000 \uD800 😀 "quoted" \\ text',
      messageCount: 1.5e300,
      lastSfpIndex: -0.000123,
      breakpoint: { nested: [true, false, null, 'x'] },
    }),
    info('e-missing', { messageCount: undefined, lastSfpIndex: undefined, createdAt: undefined }),
    info('f-types', { messageCount: true, lastSfpIndex: 'seven', createdAt: 12 }),
    info('g-nulls', { createdAt: null, messageCount: null, lastSfpIndex: null }),
    info('h-falsy-breakpoint', { breakpoint: false, messageCount: 0, lastSfpIndex: 0 }),
  ];
}

/** The sessions of `infos` as decoding each whole saved info gives them, by agent id. */
export function sessionsOf(infos: readonly AgentInfo[]): Map<string, SessionInfo> {
  return new Map(
    infos.map((info) => [
      info.agentId,
      toSessionInfo(info.agentId, JSON.parse(JSON.stringify(info)) as Partial<AgentInfo>),
    ]),
  );
}

/** A page of sessions by agent id, to compare with `sessionsOf`. */
export function byAgentId(sessions: readonly SessionInfo[]): Map<string, SessionInfo> {
  return new Map(sessions.map((session) => [session.agentId, session]));
}
