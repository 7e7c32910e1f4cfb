/**
 * Building pages. Everything the studio shows is stored data, and stored data
 * is hostile input (an agent id, a message, a tool's input may hold HTML), so
 * pages are built only with createElement and text nodes: a value is never
 * parsed as HTML. (The server's Content-Security-Policy also forbids every
 * HTML-parsing sink through Trusted Types, so a slip here fails loudly.)
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(parent, child) {
  if (child === undefined || child === null || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function setAttributes(element, attrs) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) {
      // Handlers are functions of this code, never attribute text.
      if (typeof value !== 'function') throw new Error(`refusing a non-function handler for ${name}`);
      element.addEventListener(name.slice(2), value);
    } else if (name === 'href' && !String(value).startsWith('#')) {
      // Links lead only to the studio's own pages.
      throw new Error(`refusing a link that is not a studio route: ${value}`);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

/** An HTML element: `h('a', { href: '#/x' }, 'text', childNode, [more])`. Strings become text nodes. */
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attrs);
  append(element, children);
  return element;
}

/** An SVG element, the same way. */
export function s(tag, attrs, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setAttributes(element, attrs);
  append(element, children);
  return element;
}

/** A studio route: `#/agent/<id>?tab=events`, every segment encoded (ids hold `/`, `?`, `#`). */
export function route(segments, query = {}) {
  const path = segments.map((segment) => encodeURIComponent(String(segment))).join('/');
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const search = params.toString();
  return `#/${path}${search ? `?${search}` : ''}`;
}

/** The current route: decoded segments and query. */
export function currentRoute() {
  const hash = location.hash.replace(/^#\/?/, '');
  const at = hash.indexOf('?');
  const path = at === -1 ? hash : hash.slice(0, at);
  const segments = path === '' ? [] : path.split('/').map((segment) => decodeURIComponent(segment));
  const query = Object.fromEntries(new URLSearchParams(at === -1 ? '' : hash.slice(at + 1)));
  return { segments, query };
}

/** A link to a studio route. */
export function link(text, segments, query, attrs = {}) {
  return h('a', { ...attrs, href: route(segments, query) }, text);
}

/** A link to an agent's page (its id shown in full). */
export function agentLink(agentId, query) {
  return link(agentId, ['agent', agentId], query, { class: 'agent-id' });
}

const numberFormat = new Intl.NumberFormat('en-US');

/** 100000 → "100,000". */
export function count(n) {
  return typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '';
}

/** An epoch-ms or ISO time, as ISO (UTC), or what was given. */
export function time(value) {
  if (value === undefined || value === null || value === '') return '';
  const date = typeof value === 'number' ? new Date(value) : new Date(String(value));
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace('.000Z', 'Z');
}

/** A value on one line, cut to `max` characters. */
export function preview(value, max = 80) {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  const line = text.replace(/\s*\n\s*/g, ' ⏎ ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** A value as indented JSON; long ones folded behind a summary. */
export function json(value, { open = false } = {}) {
  const text = typeof value === 'string' ? value : (JSON.stringify(value, null, 2) ?? 'undefined');
  const pre = h('pre', { class: 'json' }, text);
  const lines = text.split('\n').length;
  if (open || (lines <= 12 && text.length <= 1200)) return pre;
  return h('details', { class: 'fold' }, h('summary', {}, `${count(lines)} lines`), pre);
}

/** A `<dl>` of label → value pairs, skipping empty values. */
export function facts(pairs) {
  const list = h('dl', { class: 'facts' });
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    list.append(h('div', {}, h('dt', {}, label), h('dd', {}, value)));
  }
  return list;
}

/** A table: columns are `{ header, cell(row) → node | text, class? }`. */
export function table(columns, rows, attrs = {}) {
  return h(
    'table',
    attrs,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((c) => h('th', { class: c.class }, c.header)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h(
          'tr',
          {},
          columns.map((c) => h('td', { class: c.class }, c.cell(row))),
        ),
      ),
    ),
  );
}

/** A state or role as a coloured label; the class comes from a fixed list, never from the data. */
export function badge(text, known = []) {
  const kind = known.includes(text) ? ` badge-${String(text).toLowerCase()}` : '';
  return h('span', { class: `badge${kind}` }, text);
}

/**
 * "rows 51–100 of 2,000" with previous / next links. `page` is
 * `{ offset, limit, more, total? }`; `hrefFor(offset)` gives a page's route.
 */
export function pager(page, noun, hrefFor, shown) {
  const first = page.offset + 1;
  const last = page.offset + shown;
  const of = typeof page.total === 'number' ? ` of ${count(page.total)}` : page.more ? '+' : '';
  const label =
    shown === 0
      ? page.offset === 0
        ? `no ${noun}`
        : `no ${noun} at ${count(page.offset)}`
      : `${noun} ${count(first)}–${count(last)}${of}`;
  const previous = Math.max(0, page.offset - page.limit);
  return h(
    'nav',
    { class: 'pager', 'aria-label': `${noun} pages` },
    page.offset > 0 ? h('a', { href: hrefFor(0), class: 'first' }, '« first') : null,
    page.offset > 0 ? h('a', { href: hrefFor(previous), rel: 'prev' }, '‹ previous') : null,
    h('span', { class: 'range' }, label),
    page.more ? h('a', { href: hrefFor(page.offset + page.limit), rel: 'next' }, 'next ›') : null,
  );
}

/** A message saying what went wrong. */
export function problem(message) {
  return h('p', { class: 'problem', role: 'alert' }, message);
}

/** A form whose submit (button or Enter) calls `onSubmit(values)` instead of navigating. */
export function form(attrs, children, onSubmit) {
  const element = h('form', attrs, children);
  element.addEventListener('submit', (event) => {
    event.preventDefault();
    onSubmit(Object.fromEntries(new FormData(element)));
  });
  return element;
}

/** A labelled input. */
export function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

/** A `<select>` of `[value, text]` options with one selected. */
export function select(name, options, selected) {
  return h(
    'select',
    { name },
    options.map(([value, text]) => h('option', { value, selected: value === (selected ?? '') }, text)),
  );
}
