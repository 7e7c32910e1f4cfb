/**
 * How strings from stored values become values of indexed `text` columns.
 *
 * PostgreSQL `text` cannot hold `\u0000`, and `pg` sends strings as UTF-8, so
 * a lone surrogate arrives as U+FFFD and two different names could meet in
 * one column value. The JSON text of every value is already safe (encodeJson
 * escapes both); the extracted filter columns (tool names, states, roles,
 * content types, template ids, user ids, snapshot ids, channels) go through
 * `columnKey`, which is injective: ordinary strings stay as they are (so
 * their order and readability are kept), and the rare string that could not
 * be stored as is, or that starts with `"`, becomes its JSON string literal,
 * which starts with `"`. Filters go through the same function, so they match
 * exactly what was saved.
 */
export function columnKey(value: string): string {
  if (value.startsWith('"') || value.includes('\u0000') || !value.isWellFormed()) {
    return JSON.stringify(value);
  }
  return value;
}

/** `columnKey` for optional values: anything but a string becomes SQL NULL. */
export function optionalColumnKey(value: unknown): string | null {
  return typeof value === 'string' ? columnKey(value) : null;
}
