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

/**
 * The smallest string greater than every string starting with `prefix`, in
 * code-point order (the "C" collation on UTF-8), or `undefined` when there is
 * none. `agent_id >= prefix AND agent_id < upper` is then an exact, indexable
 * prefix match, with no LIKE pattern to escape.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const codePoints = Array.from(prefix, (ch) => ch.codePointAt(0) as number);
  while (codePoints.length > 0) {
    const last = codePoints.pop() as number;
    let next = last + 1;
    // Surrogate code points cannot appear in well-formed text; skip over them.
    if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
    if (next <= 0x10ffff) return String.fromCodePoint(...codePoints, next);
  }
  return undefined;
}
