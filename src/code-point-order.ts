/**
 * Orders strings by Unicode code point, which is what SQLite's BINARY
 * collation, PostgreSQL's "C" collation and MongoDB's simple collation do on
 * UTF-8 text. JavaScript's default sort compares UTF-16 code units instead and
 * puts astral characters (emoji, U+1xxxx) before U+E000–U+FFFF; this does not.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Only a surrogate against a unit at or above U+E000 sorts differently
    // from code-unit order: the surrogate starts a code point above U+FFFF.
    const xHigh = x >= 0xd800 && x <= 0xdfff;
    const yHigh = y >= 0xd800 && y <= 0xdfff;
    if (xHigh !== yHigh && (xHigh ? y >= 0xe000 : x >= 0xe000)) return xHigh ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
