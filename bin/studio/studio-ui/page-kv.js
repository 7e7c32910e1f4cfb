import { api } from './api.js';
import { count, facts, form, h, json, link, preview, problem, route, table, time } from './dom.js';

/**
 * `#/kv/...`: instances → namespaces → records, and one record. The query
 * box takes the query DSL's `where`, `orderBy` and `select` as JSON; the
 * page supplies the instance, the namespace and the paging (by cursor).
 */

const EXAMPLE_QUERY = '{\n  "where": [],\n  "orderBy": { "field": "key" }\n}';

function crumbs(instanceId, namespace, key) {
  const parts = [link('KV', ['kv'])];
  if (instanceId !== undefined) parts.push(' / ', link(instanceId, ['kv', instanceId]));
  if (namespace !== undefined) parts.push(' / ', link(namespace, ['kv', instanceId, namespace]));
  if (key !== undefined) parts.push(' / ', h('span', {}, key));
  return h('nav', { class: 'crumbs', 'aria-label': 'KV location' }, parts);
}

/** `#/kv` */
export async function kvInstancesPage() {
  const { items } = await api('kv/instances');
  return {
    title: 'KV',
    node: h(
      'section',
      {},
      h('h1', {}, 'KV instances'),
      items.length === 0
        ? h('p', { class: 'muted' }, 'No KV instances.')
        : table(
            [
              { header: 'Instance', cell: (i) => link(i.id, ['kv', i.id]) },
              { header: 'Name', cell: (i) => i.name },
              { header: 'Description', cell: (i) => preview(i.description, 80) },
              { header: 'Records', class: 'num', cell: (i) => count(i.records) },
              { header: 'Created', class: 'time', cell: (i) => time(i.createdAt) },
              { header: 'Updated', class: 'time', cell: (i) => time(i.updatedAt) },
            ],
            items,
            { class: 'kv-instances' },
          ),
    ),
  };
}

/** The query box and its results, over an instance or one of its namespaces. */
async function queryView(instanceId, namespace, query) {
  const segments = namespace === undefined ? ['kv', instanceId] : ['kv', instanceId, namespace];
  const box = h(
    'textarea',
    { name: 'q', rows: 5, spellcheck: 'false', 'aria-label': 'Query (JSON)' },
    query.q ?? EXAMPLE_QUERY,
  );
  const queryForm = form(
    { class: 'query-box', 'aria-label': 'KV query' },
    [
      h('label', {}, 'Query ', h('span', { class: 'muted' }, '(JSON: where, orderBy, select)')),
      box,
      h('button', { type: 'submit' }, 'Run query'),
    ],
    (values) => {
      location.hash = route(segments, { q: values.q });
    },
  );
  let results;
  try {
    const page = await api('kv/query', {
      instance: instanceId,
      namespace,
      q: query.q,
      cursor: query.cursor,
      limit: query.limit,
    });
    const next = page.nextCursor
      ? route(segments, { q: query.q, cursor: page.nextCursor, limit: query.limit })
      : undefined;
    results = h(
      'div',
      {},
      h(
        'nav',
        { class: 'pager', 'aria-label': 'records pages' },
        query.cursor
          ? h('a', { href: route(segments, { q: query.q, limit: query.limit }), class: 'first' }, '« first')
          : null,
        h('span', { class: 'range' }, `${count(page.records.length)} shown of ${count(page.total)} records`),
        next ? h('a', { href: next, rel: 'next' }, 'next ›') : null,
      ),
      page.records.length === 0
        ? null
        : table(
            [
              {
                header: 'Key',
                cell: (r) =>
                  r.key === undefined || r.namespace === undefined
                    ? (r.key ?? '')
                    : link(r.key, ['kv', instanceId, r.namespace, r.key]),
              },
              namespace === undefined ? { header: 'Namespace', cell: (r) => r.namespace ?? '' } : null,
              { header: 'Version', class: 'num', cell: (r) => r.version ?? '' },
              { header: 'Updated', class: 'time', cell: (r) => time(r.updatedAt) },
              {
                header: 'Value',
                cell: (r) => (r.value === undefined ? '' : h('code', {}, preview(r.value, 90))),
              },
              {
                header: 'Metadata',
                cell: (r) =>
                  r.metadata && Object.keys(r.metadata).length > 0
                    ? h('code', {}, preview(r.metadata, 50))
                    : '',
              },
            ].filter(Boolean),
            page.records,
            { class: 'kv-records' },
          ),
    );
  } catch (error) {
    results = problem(error.message);
  }
  return h('div', {}, queryForm, results);
}

/** `#/kv/<instance>` */
export async function kvInstancePage({ segments, query }) {
  const instanceId = segments[1];
  const { instance, items } = await api('kv/namespaces', { instance: instanceId });
  return {
    title: `KV ${instanceId}`,
    node: h(
      'section',
      {},
      crumbs(instanceId),
      h('h1', {}, h('span', { class: 'muted' }, 'KV instance '), instance.name),
      facts([
        ['Id', instance.id],
        ['Description', instance.description],
        ['Created', time(instance.createdAt)],
        ['Updated', time(instance.updatedAt)],
      ]),
      h('h2', {}, 'Namespaces'),
      items.length === 0
        ? h('p', { class: 'muted' }, 'No namespace holds a live record.')
        : table(
            [
              { header: 'Namespace', cell: (n) => link(n.namespace, ['kv', instanceId, n.namespace]) },
              { header: 'Records', class: 'num', cell: (n) => count(n.records) },
            ],
            items,
            { class: 'kv-namespaces' },
          ),
      h('h2', {}, 'Records of every namespace'),
      await queryView(instanceId, undefined, query),
    ),
  };
}

/** `#/kv/<instance>/<namespace>` */
export async function kvNamespacePage({ segments, query }) {
  const [, instanceId, namespace] = segments;
  return {
    title: `KV ${namespace}`,
    node: h(
      'section',
      {},
      crumbs(instanceId, namespace),
      h('h1', {}, h('span', { class: 'muted' }, 'Namespace '), namespace),
      await queryView(instanceId, namespace, query),
    ),
  };
}

/** `#/kv/<instance>/<namespace>/<key>` */
export async function kvRecordPage({ segments }) {
  const [, instanceId, namespace, key] = segments;
  const { record } = await api('kv/record', { instance: instanceId, namespace, key });
  return {
    title: `KV ${key}`,
    node: h(
      'section',
      {},
      crumbs(instanceId, namespace, key),
      h('h1', {}, h('span', { class: 'muted' }, 'Record '), record.key),
      facts([
        ['Version', String(record.version)],
        ['Created', time(record.createdAt)],
        ['Updated', time(record.updatedAt)],
        ['Created by', record.createdBy],
        ['Updated by', record.updatedBy],
        ['Expires', time(record.expiresAt)],
        ['Record id', record.id],
      ]),
      h('h2', {}, 'Value'),
      json(record.value, { open: true }),
      h('h2', {}, 'Metadata'),
      json(record.metadata ?? {}, { open: true }),
    ),
  };
}
