/**
 * What every studio API route reads from a request: its parameters, checked
 * (a bad one is a 400 `StudioRequestError`), and pages of lists.
 */

/** A request the API refuses: bad parameters (400) or nothing there (404). */
export class StudioRequestError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
  ) {
    super(message);
    this.name = 'StudioRequestError';
  }
}

/** Rows per page when the request does not say. */
export const DEFAULT_PAGE = 50;
/** The largest page a request may ask for. */
export const MAX_PAGE = 500;
/** Agents read at the same time for a page (per-agent counts, fleet stats). */
export const CONCURRENT_READS = 4;

// ---- parameters -------------------------------------------------------------

export function text(params: URLSearchParams, name: string): string | undefined {
  const value = params.get(name);
  return value === null || value === '' ? undefined : value;
}

export function required(params: URLSearchParams, name: string): string {
  const value = text(params, name);
  if (value === undefined) throw new StudioRequestError(400, `missing parameter "${name}"`);
  return value;
}

export function integer(
  params: URLSearchParams,
  name: string,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
) {
  const value = text(params, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new StudioRequestError(
      400,
      `"${name}" must be an integer from 0 to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

export interface Paging {
  offset: number;
  limit: number;
}

export function paging(params: URLSearchParams): Paging {
  const limit = integer(params, 'limit', DEFAULT_PAGE, MAX_PAGE);
  if (limit === 0) throw new StudioRequestError(400, '"limit" must be at least 1');
  return { offset: integer(params, 'offset', 0), limit };
}

export function oneOf<T extends string>(
  params: URLSearchParams,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const value = text(params, name);
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new StudioRequestError(
      400,
      `"${name}" must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** A page of a list already in memory. */
export function slice<T>(all: readonly T[], { offset, limit }: Paging) {
  return {
    items: all.slice(offset, offset + limit).map((value, i) => ({ index: offset + i, value })),
    offset,
    limit,
    total: all.length,
    more: offset + limit < all.length,
  };
}
