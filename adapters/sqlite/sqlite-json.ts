/**
 * Nesting depth beyond which SQLite's JSON functions (`json_extract`,
 * `json_type`, `json_each`, `json_valid`) cannot parse a text: they fail with
 * "malformed JSON" (`json_valid` answers 0). encodeJson refuses values
 * deeper than MAX_JSON_DEPTH, well below it, but rows written before that
 * rule may be deeper.
 */
export const SQLITE_JSON_MAX_DEPTH = 1000;

/**
 * SQL for a stored JSON column as SQLite's JSON functions may read it: the
 * column itself, or NULL (no fields, no elements) for a row too deep for
 * them, so that one such row cannot make a query over other rows fail. Each
 * level takes two bytes (its brackets), so only a longer text can be that
 * deep and pay for the extra parse.
 */
export function readableJson(column: string): string {
  return `(CASE WHEN octet_length(${column}) <= ${2 * SQLITE_JSON_MAX_DEPTH} OR json_valid(${column}) THEN ${column} END)`;
}
