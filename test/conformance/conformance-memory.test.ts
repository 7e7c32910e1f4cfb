import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { allStoreCases, runStoreConformance, verifyStore } from '../../conformance/index.js';
import { handWrittenCases } from '../../conformance/store/cases/index.js';
import { queryGridCases } from '../../conformance/store/query-grid/query-grid-cases.js';
import { MemoryStore } from '../../src/agent/memory-store.js';
import { memoryHarness } from '../mutants/memory-harness.js';

// The whole suite, one test per case, on the reference store.
runStoreConformance(memoryHarness('memory'), { describe, it, afterAll });

describe('the conformance suite on MemoryStore, without a test runner', () => {
  it('passes every case and skips only the cross-process ones, each with its reason', async () => {
    const result = await verifyStore(memoryHarness('memory'));
    const failures = result.results
      .filter((r) => r.status === 'failed')
      .map((r) => `${r.id}: ${r.error?.message}`);
    expect(failures).toEqual([]);
    const skipped = result.results.filter((r) => r.status === 'skipped');
    expect(skipped.map((r) => r.id)).toEqual([
      'locks.cross-process.exclusion',
      'locks.cross-process.dead-holder',
    ]);
    for (const r of skipped) expect(r.reason).toMatch(/crossProcessLocks: MemoryStore keeps/);
    expect(result.passed).toBe(allStoreCases().length - 2);
  });

  it('skips the retention cases, each with its reason, for a store without prune and compact', async () => {
    // A user's own store: every ExtendedStore method, no retention API.
    const withoutRetention = (store: MemoryStore) =>
      new Proxy(store, {
        get: (target, key, receiver) =>
          key === 'prune' || key === 'compact' ? undefined : Reflect.get(target, key, receiver),
      });
    const harness = memoryHarness('memory-without-prune', (database) =>
      withoutRetention(new MemoryStore({ database })),
    );
    const result = await verifyStore(harness, { only: ['retention'] });
    expect(result.results.length).toBeGreaterThanOrEqual(7);
    for (const r of result.results) {
      expect({ id: r.id, status: r.status, reason: r.reason }).toEqual({
        id: r.id,
        status: 'skipped',
        reason: 'the store has no prune() and compact() (optional API)',
      });
    }
  });

  it('has at least 150 hand-written and 200 generated cases, with unique ids', () => {
    expect(handWrittenCases().length).toBeGreaterThanOrEqual(150);
    expect(queryGridCases().length).toBeGreaterThanOrEqual(200);
    const ids = allStoreCases().map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('rejects a skip list naming an unknown case', async () => {
    await expect(
      verifyStore({ ...memoryHarness('memory'), skip: { 'no.such.case': 'because' } }),
    ).rejects.toThrow(/skip list names unknown cases: no\.such\.case/);
  });

  it('rejects a skip without a reason', async () => {
    await expect(verifyStore({ ...memoryHarness('memory'), skip: { 'events.since': '' } })).rejects.toThrow(
      /without a reason/,
    );
  });

  it('reports a case the harness skips as skipped, with the reason', async () => {
    const result = await verifyStore(
      { ...memoryHarness('memory'), skip: { 'events.since': 'tested elsewhere' } },
      { only: ['events.since'] },
    );
    expect(result).toMatchObject({ passed: 0, failed: 0, skipped: 1 });
    expect(result.results[0]?.reason).toContain('tested elsewhere');
  });

  it('skips cross-instance cases with a reason when the harness has no createPeer', async () => {
    const { createPeer: _none, ...harness } = memoryHarness('memory');
    const result = await verifyStore(harness, {
      only: ['locks.cross-instance.exclusion', 'races.peer-sees-writes'],
    });
    expect(result.skipped).toBe(2);
    for (const r of result.results) expect(r.reason).toMatch(/no createPeer/);
  });

  it('skips cases whose capability the harness switches off, with the reason', async () => {
    const result = await verifyStore(
      {
        ...memoryHarness('memory'),
        capabilities: {
          crossInstanceLocks: false,
          reasons: { crossInstanceLocks: 'locks are per object here' },
        },
      },
      { only: ['locks.cross-instance'] },
    );
    expect(result.passed).toBe(0);
    expect(result.skipped).toBeGreaterThan(0);
    for (const r of result.results) expect(r.reason).toContain('locks are per object here');
  });

  it('rejects an unknown id in only', async () => {
    await expect(verifyStore(memoryHarness('memory'), { only: ['nope'] })).rejects.toThrow(
      /unknown cases: nope/,
    );
  });

  it('fails a case that exceeds its time budget instead of hanging', async () => {
    const harness = memoryHarness('memory');
    const result = await verifyStore(harness, {
      only: ['events.since'],
      caseTimeoutMs: 1,
      extraCases: [],
    });
    // One case, run with a 1 ms budget: it either finished in time or failed for the budget, never hung.
    expect(result.passed + result.failed).toBe(1);
    if (result.failed) expect(result.results[0]?.error?.message).toMatch(/did not finish within 1 ms/);
  });

  it('never imports vitest (the suite must load under any runner or plain node)', () => {
    const root = join(import.meta.dirname, '..', '..', 'conformance');
    const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      expect(readFileSync(join(root, file), 'utf8'), file).not.toMatch(
        /^\s*(import|export)\b[^\n]*['"]vitest['"]|require\(['"]vitest/m,
      );
    }
  });

  it('drives a mocha-style runner: failures throw, skips call this.skip() with the case registered', async () => {
    const tests: Array<{ name: string; fn: (this: unknown) => Promise<void> }> = [];
    const hooks: Array<() => Promise<void>> = [];
    runStoreConformance(
      { ...memoryHarness('fake-runner'), skip: { 'events.channel': 'not this time' } },
      {
        describe: (_name, body) => body(),
        it: (name, fn) => tests.push({ name, fn }),
        afterAll: (fn) => hooks.push(fn),
        only: ['events.since', 'events.channel'],
      },
    );
    expect(tests.map((t) => t.name.split(':')[0])).toEqual(['events.since', 'events.channel']);
    await tests[0]?.fn.call({});
    let skipped = false;
    await tests[1]?.fn.call({
      skip: () => {
        skipped = true;
      },
    });
    expect(skipped).toBe(true);
    for (const hook of hooks) await hook();
  });
});
