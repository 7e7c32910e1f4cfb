import { type ErrorContext, ValidationError } from '../errors.js';
import { decodeJson, type EncodeMode, encodeJson, MAX_JSON_DEPTH } from '../json-codec.js';
import type { ReadEventsOptions, Timeline } from '../types.js';
import type { EventFields } from './agent-backend.js';

/**
 * Turns what a caller hands a store into stored JSON text, and back, with
 * errors that name the backend, the operation and the agent. Every backend
 * goes through this, so a value refused by one is refused by all, and a
 * timeline accepted by the database mode is accepted by the hybrid mode too.
 */
export class StoreCodec {
  /** The last list encoded per (what, agent), least recently used first. */
  private readonly recentLists = new Map<string, RecentList>();
  private recentChars = 0;
  /**
   * List items encoded from scratch and reused from the previous save, since
   * this codec was made: what makes a long conversation's save O(new items).
   * @internal
   */
  readonly listItems = { encoded: 0, reused: 0 };

  constructor(readonly backend: string) {}

  /** One value as JSON text (see `EncodeMode` for what each mode refuses). */
  value(value: unknown, mode: EncodeMode, operation: string, agentId: string, what: string): string {
    return encodeJson(value, mode, { backend: this.backend, operation, agentId, what });
  }

  /**
   * Each item of a list as its own JSON text (messages, tool-call records,
   * media cache). The SDK saves the whole conversation after every step, so
   * the text of items equal to those this codec last encoded for the same
   * agent is reused rather than rebuilt: a save costs O(new items) in
   * serialisation, and only a cheap structural comparison per older item.
   */
  list(list: unknown, operation: string, agentId: string, what: string): string[] {
    if (!Array.isArray(list)) {
      throw new ValidationError(`${what} must be an array`, { backend: this.backend, operation, agentId });
    }
    const key = `${what}\u0000${agentId}`;
    const previous = this.recentLists.get(key);
    const reused = previous && !prototypeIsPolluted() ? equalJsonPrefix(list, previous.shapes) : 0;
    const texts = previous ? previous.texts.slice(0, reused) : [];
    const shapes = previous ? previous.shapes.slice(0, reused) : [];
    let chars = 0;
    for (let i = 0; i < reused; i++) chars += (texts[i] as string).length;
    for (let i = reused; i < list.length; i++) {
      const item = list[i];
      // Taken now, not later: the caller may mutate the item after this save.
      // A plain item (the SDK's messages and records are) is checked and
      // shaped in one walk, then serialised by JSON.stringify; anything else
      // takes the full check, whose error names the offending path.
      const shape = plainShape(item);
      let text: string;
      if (shape) {
        text = JSON.stringify(item);
      } else {
        // Such an item is encoded again at every save: without a shape,
        // nothing can vouch that it is unchanged.
        text = this.value(item, 'strict', operation, agentId, `${what}[${i}]`);
      }
      texts.push(text);
      shapes.push(shape);
      chars += text.length;
    }
    this.remember(key, { texts, shapes, chars });
    this.listItems.encoded += list.length - reused;
    this.listItems.reused += reused;
    return texts;
  }

  /** Keeps `entry` as the most recent, then drops the least recently used ones beyond the budget. */
  private remember(key: string, entry: RecentList): void {
    this.forgetKey(key);
    this.recentLists.set(key, entry);
    this.recentChars += entry.chars;
    for (const oldest of this.recentLists.keys()) {
      if (this.recentChars <= RECENT_LIST_CHARS || oldest === key) break;
      this.forgetKey(oldest);
    }
  }

  private forgetKey(key: string): void {
    const entry = this.recentLists.get(key);
    if (!entry) return;
    this.recentChars -= entry.chars;
    this.recentLists.delete(key);
  }

  /**
   * A timeline entry as JSON text. It must carry a numeric `bookmark.seq`
   * and an `event.channel` string (readers filter on both); functions in
   * the event (the SDK's `respond` callback) are dropped, as JSON does.
   */
  timeline(timeline: unknown, operation: string, agentId: string): string {
    if (!isTimeline(timeline)) {
      throw new ValidationError(
        'timeline must be an object with a numeric bookmark.seq and a string event.channel',
        {
          backend: this.backend,
          operation,
          agentId,
        },
      );
    }
    return this.value(timeline, 'event', operation, agentId, 'timeline');
  }

  /** Stored JSON text back to a value; unreadable text is a `CorruptDataError`. */
  decode<T>(json: string, operation: string, agentId?: string): T {
    return decodeJson<T>(json, { backend: this.backend, operation, agentId });
  }
}

/** A list as last encoded: its texts, and the shape of each item (to compare the next save against). */
interface RecentList {
  texts: string[];
  shapes: Array<JsonShape | null>;
  chars: number;
}

/**
 * How much JSON text a codec keeps for incremental encoding, in characters
 * (the shapes share the items' strings, so they add little beyond the
 * structure). Beyond it the least recently saved agents are forgotten; their
 * next save is simply encoded in full.
 */
const RECENT_LIST_CHARS = 16 * 1024 * 1024;

/**
 * A JSON value flattened into tokens, in the order JSON.stringify writes it:
 * an object is OBJECT, its key count, then each key followed by its value's
 * tokens; an array is ARRAY, its length, then its items; a primitive is
 * itself. Strings are immutable, so the tokens share them with the caller's
 * value: comparing an unchanged item later mostly compares pointers.
 */
type JsonShape = unknown[];
const OBJECT = Object.freeze({ token: 'object' });
const ARRAY = Object.freeze({ token: 'array' });

/**
 * The shape of `value` as JSON.stringify writes it, when it holds only what
 * the `strict` encoding accepts unchanged: strings, booleans, finite numbers,
 * null, arrays without holes or undefined items, and plain objects (their
 * undefined properties left out, as JSON leaves them out) without `toJSON`,
 * nested less than MAX_JSON_DEPTH deep. Null for anything else (a cycle ends
 * at the depth limit), which the caller sends through the full check and
 * never reuses: so one walk both validates and shapes an ordinary item.
 */
function plainShape(value: unknown): JsonShape | null {
  const tokens: unknown[] = [];
  return appendPlainShape(value, tokens, 0) ? tokens : null;
}

function appendPlainShape(value: unknown, tokens: unknown[], depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      tokens.push(value);
      return true;
    case 'number':
      if (!Number.isFinite(value)) return false;
      tokens.push(value);
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) {
    tokens.push(null);
    return true;
  }
  if (depth >= MAX_JSON_DEPTH) return false;
  if (Array.isArray(value)) {
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
    tokens.push(ARRAY, value.length);
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === undefined || !appendPlainShape(item, tokens, depth + 1)) return false;
    }
    return true;
  }
  if (!isPlainObject(value)) return false;
  tokens.push(OBJECT, 0);
  const countAt = tokens.length - 1;
  let count = 0;
  for (const key of Object.keys(value)) {
    const property = (value as Record<string, unknown>)[key];
    // JSON leaves out properties whose value is undefined; so does the shape.
    if (property === undefined) continue;
    tokens.push(key);
    if (!appendPlainShape(property, tokens, depth + 1)) return false;
    count++;
  }
  tokens[countAt] = count;
  return true;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return (
    (proto === Object.prototype || proto === null) &&
    typeof (value as { toJSON?: unknown }).toJSON !== 'function'
  );
}

/**
 * True when Object.prototype has enumerable properties: `for...in` (used by
 * the comparison for speed) would then see inherited keys that JSON does not
 * write, so no text is reused at all.
 */
function prototypeIsPolluted(): boolean {
  for (const _ in {}) return true;
  return false;
}

/** How many leading items of `live` have, as JSON, exactly the `saved` shapes. */
function equalJsonPrefix(live: readonly unknown[], saved: ReadonlyArray<JsonShape | null>): number {
  const n = Math.min(live.length, saved.length);
  let i = 0;
  while (i < n) {
    const shape = saved[i];
    if (!shape) break;
    const item: unknown = live[i];
    const equal =
      typeof item === 'object' && item !== null
        ? matchShape(item, shape, 0) === shape.length
        : shape.length === 1 && item === shape[0];
    if (!equal) break;
    i++;
  }
  return i;
}

/**
 * Matches the object or array `live` against the tokens of `shape` from
 * `at` on: the position after its tokens, or -1 when it is written
 * differently. Every unchanged item of every save is walked, so this is the
 * hot loop of a long list's save: primitives are compared in place rather
 * than by a call each, and the position is passed and returned rather than
 * kept in a shared cursor (a getter may re-enter the codec mid-walk).
 */
function matchShape(live: object, shape: JsonShape, at: number): number {
  if (Array.isArray(live)) {
    if (shape[at] !== ARRAY || shape[at + 1] !== live.length) return -1;
    at += 2;
    for (let i = 0; i < live.length; i++) {
      const item: unknown = live[i];
      if (typeof item === 'object' && item !== null) {
        at = matchShape(item, shape, at);
        if (at < 0) return -1;
        // -0 and 0 are both written as 0, so === is the right equality.
      } else if (item !== shape[at++]) return -1;
    }
    return at;
  }
  if (shape[at] !== OBJECT || !isPlainObject(live)) return -1;
  const count = shape[at + 1] as number;
  at += 2;
  let seen = 0;
  // for...in visits own keys in the order JSON.stringify writes them (plain
  // object, unpolluted prototype), without allocating a key array.
  for (const key in live) {
    const value = (live as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (++seen > count || key !== shape[at++]) return -1;
    if (typeof value === 'object' && value !== null) {
      at = matchShape(value, shape, at);
      if (at < 0) return -1;
    } else if (value !== shape[at++]) return -1;
  }
  return seen === count ? at : -1;
}

/** True for an object shaped like a `Timeline`: a numeric `bookmark.seq` and a string `event.channel`. */
export function isTimeline(value: unknown): value is Timeline {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { bookmark, event } = value as { bookmark?: unknown; event?: unknown };
  return (
    typeof bookmark === 'object' &&
    bookmark !== null &&
    typeof (bookmark as { seq?: unknown }).seq === 'number' &&
    Number.isFinite((bookmark as { seq: number }).seq) &&
    typeof event === 'object' &&
    event !== null &&
    typeof (event as { channel?: unknown }).channel === 'string'
  );
}

/** The fields a database filters events on, read from a timeline entry (absent or malformed: null). */
export function eventFields(timeline: Timeline): EventFields {
  const channel = (timeline.event as { channel?: unknown } | undefined)?.channel;
  const seq = timeline.bookmark?.seq;
  return {
    channel: typeof channel === 'string' ? channel : null,
    seq: typeof seq === 'number' && Number.isFinite(seq) ? seq : null,
  };
}

/** `readEvents` options checked and reduced to what a backend filters on. */
export interface EventFilter {
  /** Keep entries whose `bookmark.seq` is greater than this. */
  sinceSeq?: number;
  /** Keep entries whose `event.channel` is this. */
  channel?: string;
}

/**
 * Checks `readEvents` options: a malformed `since` or `channel` would
 * otherwise silently match nothing (or everything).
 */
export function eventFilter(opts: ReadEventsOptions | undefined, ctx: ErrorContext): EventFilter {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object') throw new ValidationError('readEvents options must be an object', ctx);
  const filter: EventFilter = {};
  const { since, channel } = opts;
  if (since !== undefined && since !== null) {
    if (typeof since !== 'object' || typeof since.seq !== 'number' || !Number.isFinite(since.seq)) {
      throw new ValidationError('since must be a Bookmark with a numeric seq', ctx);
    }
    filter.sinceSeq = since.seq;
  }
  if (channel !== undefined && channel !== null) {
    if (typeof channel !== 'string') throw new ValidationError('channel must be a string', ctx);
    filter.channel = channel;
  }
  return filter;
}
