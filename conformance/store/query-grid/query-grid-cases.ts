import type { ExtendedStore, MessageFilters, SessionFilters, ToolCallFilters } from '../../../src/types.js';
import { checkEqual } from '../../runner/assertions.js';
import type { SharedFixture, StoreCase } from '../store-case.js';
import { type GridScope, gridData, gridScope } from './query-grid-data.js';
import { expectedMessages, expectedSessions, expectedToolCalls, type ModelData } from './query-model.js';

/**
 * The generated query grid: filters × sort keys × sort orders × pages over
 * one seeded data set, each answer computed by the plain model. Case ids name
 * the combination, so a failure says exactly which query went wrong.
 */

interface GridFixture {
  store: ExtendedStore;
  scope: GridScope;
  model: ModelData;
}

const gridFixture: SharedFixture<GridFixture> = {
  name: 'query-grid',
  async setUp(harness) {
    // Only queryable cases use the grid, and they run only on stores of that level or above.
    const store = (await harness.create()) as ExtendedStore;
    const token = Math.floor(Math.random() * 36 ** 6).toString(36);
    const scope = gridScope(token, Math.floor(Math.random() * 100_000));
    const model = await gridData(scope).write(store);
    return { value: { store, scope, model }, tearDown: () => harness.destroy(store) };
  },
};

type Named<F> = [name: string, filters: (s: GridScope) => F];

const PAGES: Array<[string, { limit?: number; offset?: number }]> = [
  ['all', {}],
  ['limit-2-offset-1', { limit: 2, offset: 1 }],
  ['offset-3', { offset: 3 }],
];
const ORDERS = ['asc', 'desc'] as const;
const END_OF_WINDOW = 86_399;
const iso = (ms: number) => new Date(ms).toISOString();

const SESSION_FILTERS: Array<Named<SessionFilters>> = [
  ['template-0', (s) => ({ templateId: s.template(0) })],
  ['template-1', (s) => ({ templateId: s.template(1) })],
  ['user-0', (s) => ({ userId: s.user(0) })],
  ['user-1-template-1', (s) => ({ userId: s.user(1), templateId: s.template(1) })],
  ['agent-c', (s) => ({ agentId: s.agent(2) })],
  ['window', (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW) })],
  ['after-slot-1', (s) => ({ createdAfter: s.at(1), endDate: s.at(END_OF_WINDOW) })],
  ['slot-1-to-3', (s) => ({ startDate: s.at(1), endDate: s.at(3) })],
  ['before-slot-3-as-date', (s) => ({ startDate: new Date(s.at(0)), createdBefore: new Date(s.at(3)) })],
  ['slot-1-to-5-as-iso', (s) => ({ startDate: iso(s.at(1)), createdBefore: iso(s.at(5)) })],
  [
    'template-0-after-slot-0',
    (s) => ({ templateId: s.template(0), createdAfter: s.at(0), endDate: s.at(5) }),
  ],
  ['unknown-agent', (s) => ({ agentId: `${s.prefix}-nobody` })],
];
const SESSION_SORTS = ['created_at', 'updated_at', 'message_count'] as const;

const MESSAGE_FILTERS: Array<Named<MessageFilters>> = [
  ['agent-a', (s) => ({ agentId: s.agent(0) })],
  ['agent-a-system', (s) => ({ agentId: s.agent(0), role: 'system' })],
  ['agent-b-user', (s) => ({ agentId: s.agent(1), role: 'user' })],
  ['agent-c-text', (s) => ({ agentId: s.agent(2), contentType: 'text' })],
  ['agent-d-tool-result', (s) => ({ agentId: s.agent(3), contentType: 'tool_result' })],
  ['agent-f-image', (s) => ({ agentId: s.agent(5), contentType: 'image' })],
  ['all-agents', (s) => ({ contentType: s.marker })],
  ['all-agents-assistant', (s) => ({ contentType: s.marker, role: 'assistant' })],
  ['all-agents-since-epoch', (s) => ({ contentType: s.marker, startDate: 0 })],
  ['all-agents-before-2000', (s) => ({ contentType: s.marker, createdBefore: Date.UTC(2000, 0, 1) })],
  ['agent-e-until-3000', (s) => ({ agentId: s.agent(4), endDate: new Date(Date.UTC(3000, 0, 1)) })],
];

const TOOL_CALL_FILTERS: Array<Named<ToolCallFilters>> = [
  ['window', (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW) })],
  ['agent-a', (s) => ({ agentId: s.agent(0) })],
  ['window-fs-read', (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW), toolName: 'fs_read' })],
  ['window-failed', (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW), state: 'FAILED' })],
  ['window-errors', (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW), isError: true })],
  ['window-no-errors', (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW), isError: false })],
  ['window-approval', (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW), hasApproval: true })],
  ['window-no-approval', (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW), hasApproval: false })],
  ['after-slot-2', (s) => ({ createdAfter: s.at(2), endDate: s.at(END_OF_WINDOW) })],
  ['slot-1-to-4', (s) => ({ startDate: s.at(1), endDate: s.at(4) })],
  ['agent-b-before-slot-4', (s) => ({ agentId: s.agent(1), createdBefore: s.at(4) })],
  [
    'window-probe-no-approval',
    (s) => ({ startDate: s.at(0), endDate: s.at(END_OF_WINDOW), toolName: 'probe', hasApproval: false }),
  ],
];
const TOOL_CALL_SORTS = ['created_at', 'updated_at'] as const;

function gridCase<F extends object>(
  id: string,
  title: string,
  filters: (s: GridScope) => F,
  actual: (store: ExtendedStore, f: F) => Promise<unknown>,
  expected: (model: ModelData, f: F) => unknown,
): StoreCase {
  return {
    id,
    title,
    freshStore: false,
    run: async (ctx) => {
      const { store, scope, model } = await ctx.shared(gridFixture);
      const f = filters(scope);
      checkEqual(await actual(store, f), expected(model, f), `${id.split('.')[1]}(${JSON.stringify(f)})`);
    },
  };
}

/** Every generated query case. */
export function queryGridCases(): StoreCase[] {
  const cases: StoreCase[] = [];
  for (const [name, filters] of SESSION_FILTERS) {
    for (const sortBy of SESSION_SORTS) {
      for (const sortOrder of ORDERS) {
        for (const [pageName, page] of PAGES) {
          cases.push(
            gridCase(
              `query-grid.querySessions.${name}.${sortBy}.${sortOrder}.${pageName}`,
              `querySessions ${name}, by ${sortBy} ${sortOrder}, ${pageName}: same answer as the model`,
              (s) => ({ ...filters(s), sortBy, sortOrder, ...page }),
              (store, f) => store.querySessions(f),
              expectedSessions,
            ),
          );
        }
      }
    }
  }
  for (const [name, filters] of MESSAGE_FILTERS) {
    for (const sortOrder of ORDERS) {
      for (const [pageName, page] of PAGES) {
        cases.push(
          gridCase(
            `query-grid.queryMessages.${name}.${sortOrder}.${pageName}`,
            `queryMessages ${name}, ${sortOrder}, ${pageName}: same answer as the model`,
            (s) => ({ ...filters(s), sortOrder, ...page }),
            (store, f) => store.queryMessages(f),
            expectedMessages,
          ),
        );
      }
    }
  }
  for (const [name, filters] of TOOL_CALL_FILTERS) {
    for (const sortBy of TOOL_CALL_SORTS) {
      for (const sortOrder of ORDERS) {
        for (const [pageName, page] of PAGES) {
          cases.push(
            gridCase(
              `query-grid.queryToolCalls.${name}.${sortBy}.${sortOrder}.${pageName}`,
              `queryToolCalls ${name}, by ${sortBy} ${sortOrder}, ${pageName}: same answer as the model`,
              (s) => ({ ...filters(s), sortBy, sortOrder, ...page }),
              (store, f) => store.queryToolCalls(f),
              expectedToolCalls,
            ),
          );
        }
      }
    }
  }
  return cases;
}
