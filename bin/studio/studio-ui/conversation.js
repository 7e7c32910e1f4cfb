import { badge, count, h, json, link, preview } from './dom.js';

/**
 * A conversation as people read it: each message with its role, text as
 * text, a `tool_use` with its input and, right under it, the `tool_result`
 * that answered it (wherever it sits) and the tool call's state; a
 * `tool_result` names the call it answers. Errors are marked.
 */

export const TOOL_STATES = [
  'PENDING',
  'APPROVAL_REQUIRED',
  'APPROVED',
  'EXECUTING',
  'COMPLETED',
  'FAILED',
  'DENIED',
  'SEALED',
];

const ROLES = ['user', 'assistant', 'system'];

function resultContent(content) {
  if (typeof content === 'string') return h('pre', { class: 'text' }, content);
  // Providers send a list of text blocks as often as a string.
  if (
    Array.isArray(content) &&
    content.every((part) => part?.type === 'text' && typeof part.text === 'string')
  ) {
    return h('pre', { class: 'text' }, content.map((part) => part.text).join('\n'));
  }
  return json(content);
}

function errorMark(isError) {
  return isError ? h('span', { class: 'badge badge-error' }, 'error') : null;
}

function messageAnchor(agentRoute, index, pageSize) {
  // The page holding message `index`, scrolled to it (`at`): the fragment is the route, so no `#message-N`.
  const offset = Math.floor(index / pageSize) * pageSize;
  return link(`message #${index}`, agentRoute.segments, { ...agentRoute.query, offset, at: index });
}

function toolUse(block, refs, where) {
  const result = refs.results.get(block.id);
  const call = refs.calls.get(block.id);
  return h(
    'div',
    {
      class: `block tool-use${result?.isError || call?.error || call?.state === 'FAILED' ? ' is-error' : ''}`,
    },
    h(
      'div',
      { class: 'block-head' },
      h('span', { class: 'kind' }, 'tool_use'),
      h('strong', { class: 'tool-name' }, block.name),
      h('code', { class: 'muted' }, block.id),
      call ? badge(call.state, TOOL_STATES) : null,
      call && typeof call.durationMs === 'number'
        ? h('span', { class: 'muted' }, `${count(call.durationMs)} ms`)
        : null,
      call?.approval?.required
        ? h(
            'span',
            { class: 'muted' },
            `approval: ${call.approval.decision ?? 'pending'}${call.approval.decidedBy ? ` by ${call.approval.decidedBy}` : ''}`,
          )
        : null,
    ),
    h('div', { class: 'label' }, 'input'),
    json(block.input),
    call?.error ? h('p', { class: 'error-text' }, call.error) : null,
    result
      ? h(
          'div',
          { class: `tool-result-inline${result.isError ? ' is-error' : ''}` },
          h(
            'div',
            { class: 'label' },
            'result ',
            errorMark(result.isError),
            ' ',
            h(
              'span',
              { class: 'muted' },
              'in ',
              messageAnchor(where.route, result.messageIndex, where.pageSize),
            ),
          ),
          resultContent(result.content),
        )
      : h('p', { class: 'muted' }, 'no tool_result for this call in the conversation'),
  );
}

function toolResult(block, refs, where) {
  const use = refs.uses.get(block.tool_use_id);
  return h(
    'div',
    { class: `block tool-result${block.is_error ? ' is-error' : ''}` },
    h(
      'div',
      { class: 'block-head' },
      h('span', { class: 'kind' }, 'tool_result'),
      use ? h('span', {}, 'for ', h('strong', { class: 'tool-name' }, use.name)) : null,
      h('code', { class: 'muted' }, block.tool_use_id),
      errorMark(block.is_error),
      use
        ? h(
            'span',
            { class: 'muted' },
            'called in ',
            messageAnchor(where.route, use.messageIndex, where.pageSize),
          )
        : null,
    ),
    h(
      'details',
      { class: 'fold' },
      h('summary', {}, preview(block.content, 120) || '(empty)'),
      resultContent(block.content),
    ),
  );
}

function block(value, refs, where) {
  switch (value?.type) {
    case 'text':
      return h('div', { class: 'block text' }, h('pre', { class: 'text' }, value.text));
    case 'reasoning':
      return h(
        'details',
        { class: 'block reasoning' },
        h('summary', {}, 'reasoning'),
        h('pre', { class: 'text' }, value.reasoning),
      );
    case 'tool_use':
      return toolUse(value, refs, where);
    case 'tool_result':
      return toolResult(value, refs, where);
    default: {
      // Images, audio, files: described, never loaded (they may point anywhere).
      const { type, base64, ...rest } = value ?? {};
      return h(
        'div',
        { class: 'block other' },
        h('div', { class: 'block-head' }, h('span', { class: 'kind' }, String(type))),
        json(base64 ? { ...rest, base64: `(${count(base64.length)} characters)` } : rest),
      );
    }
  }
}

/**
 * `page` is an `agent/messages` (or snapshot) answer; `where` holds the
 * route of the page showing it and its page size, for links between pages.
 */
export function conversation(page, where) {
  const refs = {
    uses: new Map(page.toolUses.map((u) => [u.id, u])),
    results: new Map(page.toolResults.map((r) => [r.id, r])),
    calls: new Map(page.toolCalls.map((c) => [c.id, c])),
  };
  return h(
    'ol',
    { class: 'conversation', start: page.offset },
    page.items.map(({ index, value }) => {
      const role = ROLES.includes(value?.role) ? value.role : 'other';
      const blocks = Array.isArray(value?.content) ? value.content : [];
      return h(
        'li',
        { class: `message role-${role}`, id: `message-${index}` },
        h(
          'div',
          { class: 'message-head' },
          badge(String(value?.role), ROLES),
          h('span', { class: 'muted' }, `#${index}`),
        ),
        blocks.map((b) => block(b, refs, where)),
        value?.metadata
          ? h(
              'details',
              { class: 'fold' },
              h('summary', {}, 'metadata'),
              json(value.metadata, { open: true }),
            )
          : null,
      );
    }),
  );
}
