/**
 * String rules shared by every backend, agent store and KV alike: code-point
 * order (what SQLite's BINARY collation, PostgreSQL's "C" collation and
 * MongoDB's simple collation compare on UTF-8), and the bounds that turn a
 * prefix match into an index range.
 */
function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

/**
 * Compares two strings by Unicode code point, not by UTF-16 code unit as `<`
 * does (which puts U+1F600 before U+FFFF). A lone surrogate counts as its own
 * code point, which is also where its generalised UTF-8 encoding sorts in SQLite.
 */
export function compareCodePoints(a: string, b: string): number {
  const shared = Math.min(a.length, b.length);
  for (let i = 0; i < shared; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // If the unit before is an (identical) high surrogate, the difference may
    // be inside a code point: compare whole code points from there. When that
    // surrogate is lone in both strings, the next code points decide.
    if (i > 0 && isHighSurrogate(a.charCodeAt(i - 1))) {
      const whole = (a.codePointAt(i - 1) ?? 0) - (b.codePointAt(i - 1) ?? 0);
      if (whole !== 0) return whole;
    }
    return (a.codePointAt(i) ?? 0) - (b.codePointAt(i) ?? 0);
  }
  return a.length - b.length;
}

/** Sorts strings in code-point order, in place, and returns the array. */
export function sortCodePoints(values: string[]): string[] {
  return values.sort(compareCodePoints);
}

const MAX_CODE_POINT = 0x10ffff;

/**
 * The smallest string greater than every string that starts with `prefix`, in
 * code-point order, or `undefined` when there is none (the prefix is empty or
 * all U+10FFFF). `s.startsWith(prefix)` is then exactly
 * `prefix <= s && s < upper`, which an index can answer.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (char) => char.codePointAt(0) ?? 0);
  while (points.length > 0) {
    const last = points.pop() as number;
    if (last < MAX_CODE_POINT) {
      // Surrogates are not characters: the successor of U+D7FF is U+E000.
      points.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...points);
    }
  }
  return undefined;
}

/** Length of a string in UTF-8 bytes (the unit of database index limits). */
export function utf8Length(value: string): number {
  return Buffer.byteLength(value, 'utf8');
}
