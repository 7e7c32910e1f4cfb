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
  constructor(readonly backend: string) {}

  /** One value as JSON text (see `EncodeMode` for what each mode refuses). */
  value(value: unknown, mode: EncodeMode, operation: string, agentId: string, what: string): string {
    return encodeJson(value, mode, { backend: this.backend, operation, agentId, what });
  }

  /** Each item of a list as its own JSON text (messages, tool-call records, media cache). */
  list(list: unknown, operation: string, agentId: string, what: string): string[] {
    if (!Array.isArray(list)) {
      throw new ValidationError(`${what} must be an array`, { backend: this.backend, operation, agentId });
    }
    return list.map((item, i) => this.value(item, 'strict', operation, agentId, `${what}[${i}]`));
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
