import { type ErrorContext, ValidationError } from './errors.js';
import { decodeJson, type EncodeMode, encodeJson } from './json-codec.js';
import type { ReadEventsOptions, Timeline } from './types.js';

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
   * serialisation too, not O(conversation).
   */
  list(list: unknown, operation: string, agentId: string, what: string): string[] {
    if (!Array.isArray(list)) {
      throw new ValidationError(`${what} must be an array`, { backend: this.backend, operation, agentId });
    }
    const key = `${what}\u0000${agentId}`;
    const previous = this.recentLists.get(key);
    const reused = previous ? equalJsonPrefix(list, previous.values) : 0;
    const texts = previous ? previous.texts.slice(0, reused) : [];
    for (let i = reused; i < list.length; i++) {
      texts.push(this.value(list[i], 'strict', operation, agentId, `${what}[${i}]`));
    }
    // Parsed copies, not the caller's objects: the SDK may mutate a message it saved.
    const values = previous ? previous.values.slice(0, reused) : [];
    for (let i = reused; i < texts.length; i++) values.push(JSON.parse(texts[i] as string));
    this.remember(key, { texts, values, chars: texts.reduce((sum, text) => sum + text.length, 0) });
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

/** A list as last encoded: its texts, and those texts parsed (to compare the next save against). */
interface RecentList {
  texts: string[];
  values: unknown[];
  chars: number;
}

/**
 * How much JSON text a codec keeps for incremental encoding, in characters
 * (the parsed copies take a few times that). Beyond it the least recently
 * saved agents are forgotten; their next save is simply encoded in full.
 */
const RECENT_LIST_CHARS = 16 * 1024 * 1024;

/**
 * How many leading items of `live` are, as JSON, exactly the `saved` values
 * (parsed JSON). Only plain objects, arrays and primitives compare equal, with
 * the same keys in the same order; anything else (a Date, a class instance,
 * an `undefined` field) counts as different and is simply encoded again.
 */
function equalJsonPrefix(live: readonly unknown[], saved: readonly unknown[]): number {
  const n = Math.min(live.length, saved.length);
  let i = 0;
  while (i < n && sameJson(live[i], saved[i])) i++;
  return i;
}

function sameJson(live: unknown, saved: unknown): boolean {
  if (typeof live !== 'object' || live === null) {
    // -0 and 0 are both written as 0; NaN never reaches here (refused when first encoded).
    return live === saved;
  }
  if (typeof saved !== 'object' || saved === null) return false;
  if (Array.isArray(live)) {
    if (!Array.isArray(saved) || live.length !== saved.length) return false;
    for (let i = 0; i < live.length; i++) if (!sameJson(live[i], saved[i])) return false;
    return true;
  }
  if (Array.isArray(saved)) return false;
  const proto = Object.getPrototypeOf(live);
  if (proto !== Object.prototype && proto !== null) return false;
  const liveKeys = Object.keys(live);
  const savedKeys = Object.keys(saved);
  if (liveKeys.length !== savedKeys.length) return false;
  for (let k = 0; k < liveKeys.length; k++) {
    const key = liveKeys[k] as string;
    if (key !== savedKeys[k]) return false;
    if (!sameJson((live as Record<string, unknown>)[key], (saved as Record<string, unknown>)[key]))
      return false;
  }
  return true;
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
