import { api } from './api.js';
import { agentLink, count, field, form, h, link, pager, route, select, table, time } from './dom.js';

const SORT_NAMES = { created_at: 'creation time', updated_at: 'last update', message_count: 'message count' };

const FILTERS = ['template', 'from', 'to', 'prefix', 'sort', 'order'];

function filtersOf(query) {
  return Object.fromEntries(FILTERS.map((name) => [name, query[name] ?? '']));
}

function filterForm(filters, overview) {
  const input = (name, placeholder) =>
    h('input', { name, value: filters[name], placeholder, autocomplete: 'off', spellcheck: 'false' });
  return form(
    { class: 'filters', 'aria-label': 'Filter agents' },
    [
      field('Template', input('template', 'any template')),
      field('Created from (UTC)', input('from', '2026-01-31 or 2026-01-31T09:00Z')),
      field('Created to (UTC)', input('to', 'any time')),
      field('Id prefix', input('prefix', 'agt-')),
      field(
        'Sort by',
        select(
          'sort',
          overview.sessionSorts.map((sort) => [sort, SORT_NAMES[sort] ?? sort]),
          filters.sort || 'created_at',
        ),
      ),
      field(
        'Order',
        select(
          'order',
          [
            ['desc', 'newest / largest first'],
            ['asc', 'oldest / smallest first'],
          ],
          filters.order || 'desc',
        ),
      ),
      h('button', { type: 'submit' }, 'Apply'),
      h('a', { href: route(['agents']), class: 'reset' }, 'Clear'),
    ],
    (values) => {
      location.hash = route(['agents'], values);
    },
  );
}

function eventCount(events) {
  return events.capped ? `${count(events.count)}+` : count(events.count);
}

/** `#/agents`: every agent with saved info, filtered, ordered and paged on the server. */
export async function agentsPage({ query, overview }) {
  const filters = filtersOf(query);
  const offset = query.offset ?? 0;
  const page = await api('agents', { ...filters, offset, limit: query.limit });
  const hrefFor = (at) => route(['agents'], { ...filters, offset: at, limit: query.limit });
  const columns = [
    {
      header: 'Agent',
      cell: (a) => [
        agentLink(a.agentId),
        a.parent ? h('div', { class: 'muted' }, 'child of ', agentLink(a.parent)) : null,
      ],
    },
    {
      header: 'Template',
      cell: (a) => link(a.templateId, ['agents'], { ...filters, template: a.templateId }),
    },
    { header: 'Created', class: 'time', cell: (a) => time(a.createdAt) },
    { header: 'Messages', class: 'num', cell: (a) => count(a.messages) },
    { header: 'Tool calls', class: 'num', cell: (a) => count(a.toolCalls) },
    { header: 'Events', class: 'num', cell: (a) => eventCount(a.events) },
    { header: 'Snapshots', class: 'num', cell: (a) => count(a.snapshots) },
    { header: 'Breakpoint', cell: (a) => a.breakpoint ?? '' },
  ];
  return {
    title: 'Agents',
    node: h(
      'section',
      {},
      h('h1', {}, 'Agents'),
      filterForm(filters, overview),
      pager(page, 'agents', hrefFor, page.items.length),
      page.items.length > 0 ? table(columns, page.items, { class: 'agents' }) : null,
      h(
        'p',
        { class: 'muted' },
        `Agents with saved info. Events are counted up to ${count(overview.listedEventCountCap)} here; an agent's page counts them all.`,
      ),
    ),
  };
}
