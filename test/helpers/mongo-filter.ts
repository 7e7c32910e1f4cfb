/**
 * A reference evaluator of the MongoDB filter and sort operators the MongoDB
 * adapter emits, written from the manual's semantics, so that unit tests can
 * check the translation of queries without a server:
 * - equality on a scalar field; equality on an array field matches when the
 *   array holds the value; `{ field: null }` matches null and missing;
 * - `$gt`/`$gte`/`$lt`/`$lte` only match values of the operand's type ("type
 *   bracketing"); strings compare as UTF-8 bytes (no collation);
 * - `$ne` matches missing fields too; `$in`, `$nin`, `$and`, `$or`.
 * Anything else throws, so a translation that starts emitting a new operator
 * fails loudly here instead of being checked against a guess.
 */

export type Doc = Record<string, unknown>;

/** MongoDB compares strings by UTF-8 bytes when no collation is set. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function compareScalars(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return compareUtf8(a, b);
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  throw new Error(`the evaluator does not compare ${typeof a} with ${typeof b}`);
}

function equals(value: unknown, operand: unknown): boolean {
  if (operand === null) return value === null || value === undefined;
  if (Array.isArray(value)) return value.includes(operand);
  return value === operand;
}

function fieldMatches(value: unknown, condition: unknown): boolean {
  const isOperatorDoc =
    typeof condition === 'object' &&
    condition !== null &&
    !Array.isArray(condition) &&
    Object.keys(condition).every((key) => key.startsWith('$'));
  if (!isOperatorDoc) return equals(value, condition);
  for (const [op, operand] of Object.entries(condition as Doc)) {
    switch (op) {
      case '$in':
        if (!(operand as unknown[]).some((item) => equals(value, item))) return false;
        break;
      case '$nin':
        if ((operand as unknown[]).some((item) => equals(value, item))) return false;
        break;
      case '$ne':
        if (equals(value, operand)) return false;
        break;
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte': {
        if (value === null || value === undefined || typeof value !== typeof operand) return false;
        const c = compareScalars(value, operand);
        const ok = { $gt: c > 0, $gte: c >= 0, $lt: c < 0, $lte: c <= 0 }[op];
        if (!ok) return false;
        break;
      }
      default:
        throw new Error(`the evaluator does not know ${op}`);
    }
  }
  return true;
}

/** Whether `doc` matches `filter`. */
export function matches(doc: Doc, filter: Doc): boolean {
  for (const [field, condition] of Object.entries(filter)) {
    if (field === '$and') {
      if (!(condition as Doc[]).every((item) => matches(doc, item))) return false;
    } else if (field === '$or') {
      if (!(condition as Doc[]).some((item) => matches(doc, item))) return false;
    } else if (field.startsWith('$')) {
      throw new Error(`the evaluator does not know ${field}`);
    } else if (!fieldMatches(doc[field], condition)) {
      return false;
    }
  }
  return true;
}

/** Sorts like `cursor.sort(sort)` for the scalar fields the adapter sorts on. */
export function sortDocuments(docs: Doc[], sort: Record<string, 1 | -1>): Doc[] {
  return [...docs].sort((a, b) => {
    for (const [field, dir] of Object.entries(sort)) {
      const c = compareScalars(a[field], b[field]);
      if (c !== 0) return dir * c;
    }
    return 0;
  });
}
