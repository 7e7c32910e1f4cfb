import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeSessionFilters, parseIsoTime, toEpochMs } from '../../src/agent/query-filters.js';
import { sessionFields } from '../../src/agent/record-fields.js';

describe('times in filters and sessions never depend on the process time zone', () => {
  // Node applies a change of TZ at once; a zone far from UTC makes a local-time reading visible.
  const zone = process.env.TZ;
  beforeAll(() => {
    process.env.TZ = 'Asia/Kolkata';
  });
  afterAll(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it('reads a date-time without a zone as UTC', () => {
    expect(parseIsoTime('2026-01-01T10:00:00')).toBe(Date.UTC(2026, 0, 1, 10));
    expect(parseIsoTime('2026-01-01T10:00:00.250')).toBe(Date.UTC(2026, 0, 1, 10, 0, 0, 250));
    expect(parseIsoTime('2026-01-01T10:00')).toBe(Date.UTC(2026, 0, 1, 10));
  });

  it('keeps an explicit zone and plain dates as ISO-8601 defines them', () => {
    expect(parseIsoTime('2026-01-01T10:00:00+02:00')).toBe(Date.UTC(2026, 0, 1, 8));
    expect(parseIsoTime('2026-01-01T10:00:00Z')).toBe(Date.UTC(2026, 0, 1, 10));
    expect(parseIsoTime('2026-01-01')).toBe(Date.UTC(2026, 0, 1));
    expect(parseIsoTime('yesterday')).toBeNaN();
  });

  it('applies the same reading to filters and to AgentInfo.createdAt', () => {
    expect(toEpochMs('2026-01-01T10:00:00', 'createdAfter')).toBe(Date.UTC(2026, 0, 1, 10));
    expect(normalizeSessionFilters({ startDate: '2026-01-01T10:00:00' }).from).toEqual({
      ms: Date.UTC(2026, 0, 1, 10),
      inclusive: true,
    });
    expect(sessionFields({ createdAt: '2026-01-01T10:00:00' }).createdAtMs).toBe(Date.UTC(2026, 0, 1, 10));
  });

  it('refuses limits and offsets that are not exact non-negative integers', () => {
    for (const limit of [-1, 1.5, 2 ** 53, 1e20, Number.NaN, '10']) {
      expect(() => normalizeSessionFilters({ limit } as never)).toThrow(
        expect.objectContaining({ code: 'KODE_QUERY' }),
      );
    }
    expect(normalizeSessionFilters({ limit: 2 ** 53 - 1 }).limit).toBe(2 ** 53 - 1);
  });
});
