import { api } from './api.js';
import { barChart } from './chart.js';
import { conversation, TOOL_STATES } from './conversation.js';
import {
  agentLink,
  badge,
  count,
  facts,
  field,
  form,
  h,
  json,
  link,
  pager,
  preview,
  problem,
  route,
  select,
  table,
  time,
} from './dom.js';

/**
 * `#/agent/<id>?tab=…`: one agent. The header (info, counts, lineage) and
 * the tab's page load side by side; the full event count is asked for
 * after the page is shown, so a 100,000-event agent opens as fast as a
 * small one and its count arrives when it is ready.
 */

const TABS = [
  ['conversation', 'Conversation'],
  ['tools', 'Tool calls'],
  ['events', 'Events'],
  ['todos', 'Todos'],
  ['snapshots', 'Snapshots'],
  ['info', 'Info'],
];

const CHANNELS = ['progress', 'control', 'monitor'];
const TODO_STATES = ['pending', 'in_progress', 'completed'];

export function stateClass(state) {
  return TOOL_STATES.includes(state) ? `state-${state.toLowerCase()}` : '';
}

function lineage(agentId, detail) {
  const { ancestors, parent, children } = detail.lineage;
  // `lineage` names the agents this one came from: forks, and sub-agents an agent started.
  return h(
    'section',
    { class: 'lineage', 'aria-label': 'Lineage' },
    parent
      ? h('p', { class: 'parent' }, 'Parent: ', agentLink(parent))
      : h('p', { class: 'muted' }, 'No parent.'),
    ancestors.length > 1
      ? h(
          'p',
          { class: 'chain' },
          'Lineage: ',
          ancestors.flatMap((id) => [agentLink(id), ' → ']),
          h('strong', {}, agentId),
        )
      : null,
    children.length > 0
      ? h(
          'div',
          { class: 'forks' },
          `Forks (${children.length}): `,
          h(
            'ul',
            { class: 'children' },
            children.map((id) => h('li', {}, agentLink(id))),
          ),
        )
      : h('p', { class: 'muted' }, 'No forks.'),
  );
}

function header(agentId, detail, eventCounter) {
  const info = detail.info ?? {};
  return h(
    'header',
    { class: 'agent-head' },
    h('h1', {}, h('span', { class: 'muted' }, 'Agent '), h('span', { class: 'agent-title' }, agentId)),
    facts([
      ['Template', info.templateId ? link(info.templateId, ['agents'], { template: info.templateId }) : ''],
      ['Created', time(info.createdAt)],
      ['Breakpoint', info.breakpoint],
      ['Config version', info.configVersion],
      [
        'Last bookmark',
        info.lastBookmark ? `seq ${info.lastBookmark.seq} at ${time(info.lastBookmark.timestamp)}` : '',
      ],
      ['Messages', count(detail.stats.totalMessages)],
      ['Tool calls', count(detail.stats.totalToolCalls)],
      ['Events', eventCounter],
      ['Snapshots', count(detail.stats.totalSnapshots)],
      ['Todos', detail.todos ? count(detail.todos.todos?.length ?? 0) : ''],
    ]),
    lineage(agentId, detail),
  );
}

/** Fills `target` with the agent's whole event count, by channel, once it is counted. */
function countEventsInto(target, counting) {
  counting.then(
    (counts) => {
      target.classList.remove('muted');
      const channels = counts.byChannel.map((c) => `${c.key} ${count(c.count)}`).join(' · ');
      target.replaceChildren(
        h('span', { class: 'event-total' }, count(counts.total)),
        channels ? h('span', { class: 'muted' }, ` (${channels})`) : null,
      );
    },
    (error) => target.replaceChildren(problem(`not counted: ${error.message}`)),
  );
}

function tabs(agentId, active) {
  return h(
    'nav',
    { class: 'tabs', 'aria-label': 'Agent views' },
    TABS.map(([key, text]) =>
      link(text, ['agent', agentId], { tab: key }, { 'aria-current': key === active ? 'page' : undefined }),
    ),
  );
}

// ---- tabs -------------------------------------------------------------------

async function conversationTab(agentId, query) {
  const page = await api('agent/messages', { id: agentId, offset: query.offset, limit: query.limit });
  const here = { segments: ['agent', agentId], query: { tab: 'conversation', limit: query.limit } };
  const hrefFor = (offset) => route(here.segments, { ...here.query, offset });
  return h(
    'div',
    {},
    pager(page, 'messages', hrefFor, page.items.length),
    conversation(page, { route: here, pageSize: page.limit }),
    page.items.length > 5 ? pager(page, 'messages', hrefFor, page.items.length) : null,
  );
}

function toolRow(record) {
  return h(
    'details',
    { class: `tool-call${record.value.error || record.value.isError ? ' is-error' : ''}` },
    h(
      'summary',
      {},
      h('span', { class: 'muted' }, `#${record.index}`),
      ' ',
      h('strong', { class: 'tool-name' }, record.value.name),
      ' ',
      badge(record.value.state, TOOL_STATES),
      ' ',
      h('code', { class: 'muted' }, record.value.id),
      record.value.error ? h('span', { class: 'error-text' }, ` ${preview(record.value.error, 80)}`) : null,
    ),
    facts([
      ['Created', time(record.value.createdAt)],
      ['Started', time(record.value.startedAt)],
      ['Completed', time(record.value.completedAt)],
      ['Duration', typeof record.value.durationMs === 'number' ? `${count(record.value.durationMs)} ms` : ''],
      [
        'Approval',
        record.value.approval?.required
          ? `${record.value.approval.decision ?? 'pending'}${record.value.approval.decidedBy ? ` by ${record.value.approval.decidedBy}` : ''}${record.value.approval.note ? ` (${record.value.approval.note})` : ''}`
          : 'not required',
      ],
      ['Error', record.value.error ? h('span', { class: 'error-text' }, record.value.error) : ''],
    ]),
    h('div', { class: 'label' }, 'input'),
    json(record.value.input),
    record.value.result !== undefined
      ? [h('div', { class: 'label' }, 'result'), json(record.value.result)]
      : null,
    Array.isArray(record.value.auditTrail) && record.value.auditTrail.length > 0
      ? [
          h('div', { class: 'label' }, 'audit trail'),
          table(
            [
              { header: 'State', cell: (e) => badge(e.state, TOOL_STATES) },
              { header: 'At', class: 'time', cell: (e) => time(e.timestamp) },
              { header: 'Note', cell: (e) => e.note ?? '' },
            ],
            record.value.auditTrail,
            { class: 'compact' },
          ),
        ]
      : null,
  );
}

async function toolsTab(agentId, query, detail) {
  const page = await api('agent/tools', {
    id: agentId,
    state: query.state,
    name: query.name,
    offset: query.offset,
    limit: query.limit,
  });
  const base = { tab: 'tools', state: query.state, name: query.name, limit: query.limit };
  const hrefFor = (offset) => route(['agent', agentId], { ...base, offset });
  return h(
    'div',
    {},
    h(
      'div',
      { class: 'charts' },
      barChart('Tool calls by state', detail.stats.toolCallsByState, { classFor: stateClass }),
      barChart('Tool calls by name', detail.stats.toolCallsByName),
    ),
    form(
      { class: 'filters', 'aria-label': 'Filter tool calls' },
      [
        field('State', select('state', [['', 'any'], ...TOOL_STATES.map((s) => [s, s])], query.state)),
        field(
          'Tool',
          select(
            'name',
            [['', 'any'], ...detail.stats.toolCallsByName.map((c) => [c.key, c.key])],
            query.name,
          ),
        ),
        h('button', { type: 'submit' }, 'Apply'),
      ],
      (values) => {
        location.hash = route(['agent', agentId], { tab: 'tools', ...values });
      },
    ),
    pager(page, 'tool calls', hrefFor, page.items.length),
    h('div', { class: 'tool-calls' }, page.items.map(toolRow)),
  );
}

async function eventsTab(agentId, query, eventCounts) {
  const filters = { channel: query.channel, since: query.since };
  const page = await api('agent/events', {
    id: agentId,
    ...filters,
    offset: query.offset,
    limit: query.limit,
  });
  const hrefFor = (offset) =>
    route(['agent', agentId], { tab: 'events', ...filters, limit: query.limit, offset });
  const shown = pager(page, 'events', hrefFor, page.items.length);
  // Past the first page's end the stream was not read: its length comes from a count asked for apart.
  if (page.total === undefined) {
    eventCounts(filters).then(
      (counts) => {
        const replacement = pager({ ...page, total: counts.total }, 'events', hrefFor, page.items.length);
        shown.replaceWith(replacement);
      },
      () => {},
    );
  }
  return h(
    'div',
    {},
    form(
      { class: 'filters', 'aria-label': 'Filter events' },
      [
        field('Channel', select('channel', [['', 'all'], ...CHANNELS.map((c) => [c, c])], query.channel)),
        field(
          'Since seq',
          h('input', {
            name: 'since',
            value: query.since ?? '',
            inputmode: 'numeric',
            placeholder: 'bookmark.seq >',
          }),
        ),
        h('button', { type: 'submit' }, 'Apply'),
      ],
      (values) => {
        location.hash = route(['agent', agentId], { tab: 'events', ...values });
      },
    ),
    shown,
    table(
      [
        { header: '#', class: 'num', cell: (e) => count(e.index) },
        { header: 'Seq', class: 'num', cell: (e) => e.value?.bookmark?.seq ?? '' },
        { header: 'Time', class: 'time', cell: (e) => time(e.value?.bookmark?.timestamp) },
        { header: 'Channel', cell: (e) => badge(String(e.value?.event?.channel), CHANNELS) },
        { header: 'Type', cell: (e) => h('code', {}, String(e.value?.event?.type)) },
        {
          header: 'Summary',
          cell: (e) =>
            h(
              'details',
              { class: 'fold' },
              h('summary', {}, e.summary || '…'),
              json(e.value, { open: true }),
            ),
        },
      ],
      page.items,
      { class: 'events' },
    ),
  );
}

function todosTab(detail) {
  const todos = detail.todos;
  if (!todos) return h('p', { class: 'muted' }, 'No todos saved.');
  return h(
    'div',
    {},
    h('p', { class: 'muted' }, `version ${todos.version}, updated ${time(todos.updatedAt)}`),
    table(
      [
        { header: 'Status', cell: (t) => badge(t.status, TODO_STATES) },
        { header: 'Title', cell: (t) => t.title },
        { header: 'Assignee', cell: (t) => t.assignee ?? '' },
        { header: 'Notes', cell: (t) => t.notes ?? '' },
        { header: 'Updated', class: 'time', cell: (t) => time(t.updatedAt) },
      ],
      todos.todos ?? [],
      { class: 'todos' },
    ),
  );
}

function snapshotsTab(agentId, detail) {
  if (detail.snapshots.length === 0) return h('p', { class: 'muted' }, 'No snapshots.');
  return table(
    [
      { header: 'Snapshot', cell: (snap) => link(snap.id, ['agent', agentId, 'snapshot', snap.id]) },
      { header: 'Created', class: 'time', cell: (snap) => time(snap.createdAt) },
      { header: 'Messages', class: 'num', cell: (snap) => count(snap.messageCount) },
      { header: 'Last SFP index', class: 'num', cell: (snap) => snap.lastSfpIndex ?? '' },
      { header: 'Bookmark seq', class: 'num', cell: (snap) => snap.lastBookmark?.seq ?? '' },
      { header: 'Metadata', cell: (snap) => (snap.metadata ? json(snap.metadata) : '') },
    ],
    detail.snapshots,
    { class: 'snapshots' },
  );
}

async function tabBody(tab, agentId, query, detail, eventCounts) {
  switch (tab) {
    case 'conversation':
      return conversationTab(agentId, query);
    case 'tools':
      return toolsTab(agentId, query, await detail);
    case 'events':
      return eventsTab(agentId, query, eventCounts);
    case 'todos':
      return todosTab(await detail);
    case 'snapshots':
      return snapshotsTab(agentId, await detail);
    default:
      return json((await detail).info ?? null, { open: true });
  }
}

/** `#/agent/<id>` */
export async function agentPage({ segments, query }) {
  const agentId = segments[1];
  const tab = TABS.some(([key]) => key === query.tab) ? query.tab : 'conversation';
  // The header and the header's event count ask for the same whole count as an unfiltered timeline: once.
  const counted = new Map();
  const eventCounts = (filters) => {
    const params = { id: agentId, channel: filters.channel, since: filters.since };
    const key = JSON.stringify(params);
    if (!counted.has(key)) counted.set(key, api('agent/event-counts', params));
    return counted.get(key);
  };
  const detail = api('agent', { id: agentId });
  const [shown, body] = await Promise.all([
    detail,
    tabBody(tab, agentId, query, detail, eventCounts).catch((error) => problem(error.message)),
  ]);
  const eventCounter = h('span', { class: 'muted' }, 'counting…');
  countEventsInto(eventCounter, eventCounts({}));
  return {
    title: `Agent ${agentId}`,
    node: h(
      'section',
      {},
      header(agentId, shown, eventCounter),
      tabs(agentId, tab),
      h('div', { class: 'tab-body' }, body),
    ),
  };
}

/** `#/agent/<id>/snapshot/<snapshot>` */
export async function snapshotPage({ segments, query }) {
  const [, agentId, , snapshotId] = segments;
  const page = await api('agent/snapshot', {
    id: agentId,
    snapshot: snapshotId,
    offset: query.offset,
    limit: query.limit,
  });
  const here = { segments, query: { limit: query.limit } };
  const hrefFor = (offset) => route(segments, { ...here.query, offset });
  const snap = page.snapshot;
  return {
    title: `Snapshot ${snapshotId}`,
    node: h(
      'section',
      {},
      h('h1', {}, h('span', { class: 'muted' }, 'Snapshot '), snap.id),
      h('p', {}, 'of agent ', agentLink(agentId, { tab: 'snapshots' })),
      facts([
        ['Created', time(snap.createdAt)],
        ['Messages', count(snap.messageCount)],
        ['Last SFP index', snap.lastSfpIndex],
        [
          'Last bookmark',
          snap.lastBookmark ? `seq ${snap.lastBookmark.seq} at ${time(snap.lastBookmark.timestamp)}` : '',
        ],
      ]),
      snap.metadata ? json(snap.metadata) : null,
      pager(page, 'messages', hrefFor, page.items.length),
      conversation(page, { route: here, pageSize: page.limit }),
    ),
  };
}
