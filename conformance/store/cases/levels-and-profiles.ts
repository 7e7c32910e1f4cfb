import { matchesPattern } from '../../runner/selection.js';
import type { StoreCase } from '../store-case.js';
import type { StoreLevel } from '../store-levels.js';

/**
 * The level each built-in case needs, by id pattern (first match wins; the
 * rest need only `Store`). A case that checks more where the store has it
 * (a query after a round trip) stays at its own level and asks
 * `ctx.implements(...)` for the extra part.
 */
const LEVELS: Array<[pattern: string, level: StoreLevel]> = [
  ['no-ordering-trap.stats-and-consistency-without-info', 'extended'],
  ['no-ordering-trap.partial-info-queryable', 'queryable'],
  ['bad-input.fork', 'extended'],
  ['races.lock-guarded-read-modify-write', 'extended'],
  ['races.fork-while-peer-appends', 'extended'],
  ['reopen.locks-free-after-reopen', 'extended'],
  ['reopen.message-times-survive', 'queryable'],
  ['query', 'queryable'],
  ['query-grid', 'queryable'],
  ['messages.first-saved-time', 'queryable'],
  ['stats', 'queryable'],
  ['health', 'extended'],
  ['consistency', 'extended'],
  ['metrics', 'extended'],
  ['locks', 'extended'],
  ['fork', 'extended'],
  ['close', 'extended'],
  // prune and compact are above the interface; the cases also fork.
  ['retention', 'extended'],
];

/**
 * The rules of kode-store's own, which the KODE SDK does not rely on: these
 * cases belong to the `strict` profile only. Every other built-in case is a
 * rule the SDK relies on and belongs to both. The reason is kept with each
 * so that the list can be argued with.
 */
const STRICT_ONLY: Array<[pattern: string, why: string]> = [
  ['ids.invalid', 'refusing malformed agent ids with ValidationError: the SDK makes its own ids'],
  ['bad-input', 'refusing values JSON cannot hold, with ValidationError: the SDK saves JSON-safe values'],
  ['events.non-serialisable-refused', 'refusing a BigInt or a cycle in an event'],
  ['events.failed-append-keeps-order', 'order around a refused append'],
  ['events.iterable-reusable', 'iterating one readEvents result twice: the SDK iterates each once'],
  [
    'messages.roundtrip.undefined-properties-dropped',
    "JSON's rule for undefined values, which the SDK never saves",
  ],
  ['list.sorted-by-code-point', 'the order of list(): the SDK does not depend on it'],
  ['close.later-calls-reject', 'StoreClosedError after close: the SDK makes no call after close'],
  ['query.limit-default-100', "kode-store's default page size"],
  ['query.unknown-sort-by', 'refusing bad query arguments with QueryError'],
  ['query.injected-sort-by', 'refusing bad query arguments with QueryError'],
  ['query.unknown-sort-order', 'refusing bad query arguments with QueryError'],
  ['query.negative-limit', 'refusing bad query arguments with QueryError'],
  ['query.fractional-offset', 'refusing bad query arguments with QueryError'],
  ['query.huge-limit', 'refusing bad query arguments with QueryError'],
  ['query.huge-offset', 'refusing bad query arguments with QueryError'],
  ['query.string-limit', 'refusing bad query arguments with QueryError'],
  ['query.bad-date', 'refusing bad query arguments with QueryError'],
  ['messages.first-saved-time', "kode-store's rule for the time queryMessages reports for a message"],
  ['reopen.message-times-survive', "kode-store's rule for the time queryMessages reports for a message"],
  ['metrics', "what getMetrics counts is kode-store's definition"],
  ['retention', "prune and compact are kode-store's own API, which the SDK never calls"],
];

/** `c` with its level and profile filled in from the tables, where the case does not say them itself. */
export function withLevelAndProfile(c: StoreCase): StoreCase {
  const level = c.level ?? LEVELS.find(([pattern]) => matchesPattern(c.id, pattern))?.[1] ?? 'store';
  const profile =
    c.profile ?? (STRICT_ONLY.some(([pattern]) => matchesPattern(c.id, pattern)) ? 'strict' : 'sdk');
  return { ...c, level, profile };
}
