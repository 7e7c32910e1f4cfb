import { CorruptDataError, type ErrorContext, ValidationError } from './errors.js';

/**
 * How strictly a value is checked before it is stored.
 * - `strict`: anything JSON would silently change is refused: functions,
 *   symbols, BigInt, cycles, NaN/Infinity, `undefined` array items, Map/Set.
 *   `undefined` object properties are dropped (an absent optional field stays absent).
 * - `strict-no-undefined`: as `strict`, and `undefined` anywhere is refused (KV values).
 * - `event`: what the SDK's own JSON event log does: functions, symbols and
 *   `undefined` properties are dropped (a `permission_required` event carries
 *   a live `respond` callback), but BigInt, cycles and NaN/Infinity are refused.
 */
export type EncodeMode = 'strict' | 'strict-no-undefined' | 'event';

/**
 * The deepest nesting of arrays and objects a stored value may have, in
 * every mode and on every backend (`{}` and `[]` are depth 1, `{"a":[]}`
 * depth 2). SQLite's JSON functions refuse more than 1,000 levels: a value
 * deeper than that could be stored as text, but every query reading into
 * it, and any query whose rows include it, would fail. Half of that leaves
 * room for a backend that wraps a value in a document of its own, and is
 * far beyond what agent data nests.
 */
export const MAX_JSON_DEPTH = 512;

function refuse(reason: string, path: string, ctx: ErrorContext): never {
  throw new ValidationError(`value at ${path} is not JSON-serialisable: ${reason}`, { ...ctx, path });
}

function refuseDepth(path: string, ctx: ErrorContext): never {
  // The path of a deep value is long: the message keeps both of its ends.
  const shown = path.length > 160 ? `${path.slice(0, 80)}…${path.slice(-60)}` : path;
  throw new ValidationError(
    `value at ${shown} nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels, ` +
      'the limit every backend can store and query (MAX_JSON_DEPTH)',
    { ...ctx, path },
  );
}

function check(
  value: unknown,
  path: string,
  mode: EncodeMode,
  seen: Set<object>,
  ctx: ErrorContext,
  depth = 0,
): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) refuse(String(value), path, ctx);
      return;
    case 'bigint':
      refuse('BigInt', path, ctx);
      return;
    case 'undefined':
      if (mode === 'strict-no-undefined') refuse('undefined', path, ctx);
      return;
    case 'function':
    case 'symbol':
      if (mode !== 'event') refuse(typeof value, path, ctx);
      return;
  }
  if (value === null) return;
  const obj = value as Record<string, unknown>;
  if (typeof obj.toJSON === 'function') {
    check(obj.toJSON(), path, mode, seen, ctx, depth);
    return;
  }
  if (seen.has(obj)) refuse('cycle', path, ctx);
  if (value instanceof Map || value instanceof Set) refuse(value.constructor.name, path, ctx);
  // Checked before going deeper, so no value is deep enough to overflow the stack here.
  if (depth >= MAX_JSON_DEPTH) refuseDepth(path, ctx);
  seen.add(obj);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      // JSON turns these into null inside arrays: refuse rather than mangle.
      if (item === undefined || (mode !== 'event' && typeof item === 'function')) {
        refuse(item === undefined ? 'undefined array item' : 'function', `${path}[${i}]`, ctx);
      }
      check(item, `${path}[${i}]`, mode, seen, ctx, depth + 1);
    }
  } else {
    for (const key of Object.keys(obj)) check(obj[key], `${path}.${key}`, mode, seen, ctx, depth + 1);
  }
  seen.delete(obj);
}

/**
 * Serialises a value to JSON text after checking that nothing would be lost
 * or changed and that it nests no deeper than {@link MAX_JSON_DEPTH}. Key
 * order is kept (JSON.stringify keeps insertion order), lone surrogates and
 * NUL are escaped, so the text is valid UTF-8 and safe for every backend's
 * text type.
 */
export function encodeJson(
  value: unknown,
  mode: EncodeMode,
  ctx: ErrorContext & { what?: string } = {},
): string {
  const root = ctx.what ?? 'value';
  if (value === undefined) refuse('undefined', root, ctx);
  if (mode === 'event') {
    // The hot path (one call per streamed event): serialise first and walk
    // the value only when the text could hide a change. What `event` mode
    // refuses either makes JSON.stringify throw (cycles, BigInt, a value so
    // deep it overflows the stack) or leaves `null` (NaN, Infinity, undefined
    // array items) or `{}` (Map, Set) in the text, or more opening brackets
    // than the depth limit; what it allows JSON drops silently.
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      check(value, root, mode, new Set(), ctx);
      throw error;
    }
    if (!text.includes('null') && !text.includes('{}') && !mayNestTooDeep(text)) return text;
    check(value, root, mode, new Set(), ctx);
    return text;
  }
  check(value, root, mode, new Set(), ctx);
  return JSON.stringify(value);
}

/**
 * False when JSON text cannot nest deeper than MAX_JSON_DEPTH: every level
 * takes an opening bracket (and a closing one), so a short text, or one with
 * few brackets in it (strings included), is shallow enough. Cheaper than a
 * walk for the events that stream by, which are nearly all like that.
 */
function mayNestTooDeep(text: string): boolean {
  if (text.length <= 2 * MAX_JSON_DEPTH) return false;
  let brackets = 0;
  for (const bracket of ['{', '[']) {
    for (let at = text.indexOf(bracket); at !== -1; at = text.indexOf(bracket, at + 1)) {
      if (++brackets > MAX_JSON_DEPTH) return true;
    }
  }
  return false;
}

/** Parses stored JSON text; unreadable text is reported as `CorruptDataError`, not a bare SyntaxError. */
export function decodeJson<T>(text: string, ctx: ErrorContext = {}): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new CorruptDataError(`stored JSON could not be parsed (${(error as Error).message})`, {
      ...ctx,
      cause: error,
    });
  }
}
