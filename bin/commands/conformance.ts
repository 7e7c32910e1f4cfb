import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import type { CaseResult, StoreHarness, VerifyStoreResult } from '../../conformance/index.js';
import * as conformance from '../../conformance/index.js';
import type { ExtendedStore } from '../../src/types.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, positiveInteger, withStandardHelp } from '../command-support.js';
import { printJson } from '../output.js';

/** Options of `kode-store conformance`. */
export interface ConformanceCommandOptions {
  /** Case ids or id prefixes to run (default: all). */
  only?: string[];
  caseTimeout?: number;
  json?: boolean;
}

/** A KV harness, handed to `verifyKvStore` when the suite has it. */
type KvHarness = { name: string; create(): Promise<unknown>; destroy(store: unknown): Promise<void> };
type Verify<H> = (
  harness: H,
  options: { only?: string[]; caseTimeoutMs?: number; onResult?: (r: CaseResult) => void },
) => Promise<VerifyStoreResult>;

/** What a conformance module gave us. */
export interface LoadedSuiteTargets {
  store?: StoreHarness;
  kv?: KvHarness;
}

function isHarness(value: unknown): value is StoreHarness {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as StoreHarness).create === 'function' &&
    typeof (value as StoreHarness).destroy === 'function'
  );
}

function harnessFromFactory(
  name: string,
  factory: () => Promise<ExtendedStore> | ExtendedStore,
): StoreHarness {
  return {
    name,
    create: async () => factory(),
    destroy: async (store) => {
      await store.close().catch(() => undefined);
    },
  };
}

/**
 * What a module may export, in the order looked for: `harness` (a
 * `StoreHarness`), a default export that is a harness, `createStore` or a
 * default function (a store factory: each call returns a fresh, open store;
 * `close()` is its teardown); and `kvHarness` for the KV suite.
 */
export function suiteTargetsFrom(module: Record<string, unknown>, name: string): LoadedSuiteTargets {
  const targets: LoadedSuiteTargets = {};
  const candidates = [module.harness, module.default];
  const harness = candidates.find(isHarness);
  if (harness) targets.store = harness;
  else if (typeof module.createStore === 'function') {
    targets.store = harnessFromFactory(name, module.createStore as () => Promise<ExtendedStore>);
  } else if (typeof module.default === 'function') {
    targets.store = harnessFromFactory(name, module.default as () => Promise<ExtendedStore>);
  }
  if (isHarness(module.kvHarness)) targets.kv = module.kvHarness as unknown as KvHarness;
  return targets;
}

/**
 * A real dynamic `import()`. The CommonJS build (dist/cli.cjs) would
 * otherwise compile `import(url)` into `require(url)`, which cannot load an
 * ES module or a `file:` URL; a function made at run time is left alone.
 */
const importNative = new Function('url', 'return import(url)') as (
  url: string,
) => Promise<Record<string, unknown>>;

/** Imports a module by path (relative to the working directory) or package name. */
async function loadModule(specifier: string): Promise<Record<string, unknown>> {
  const asPath = resolve(specifier);
  let url: string;
  if (existsSync(asPath)) {
    url = pathToFileURL(asPath).href;
  } else {
    try {
      url = pathToFileURL(createRequire(join(process.cwd(), 'noop.js')).resolve(specifier)).href;
    } catch {
      throw new CliError(
        `module ${JSON.stringify(specifier)} not found (a path or an installed package)`,
        ExitCode.usage,
      );
    }
  }
  try {
    return await importNative(url);
  } catch (error) {
    throw new CliError(
      `module ${JSON.stringify(specifier)} could not be loaded: ${(error as Error).message}` +
        (/\.tsx?$/.test(specifier) ? ' (TypeScript modules need a loader: node --import tsx ...)' : ''),
      ExitCode.usage,
    );
  }
}

function caseLine(result: CaseResult): string {
  const ms = `${Math.round(result.durationMs)} ms`;
  switch (result.status) {
    case 'passed':
      return `PASS ${result.id}: ${result.title} (${ms})`;
    case 'skipped':
      return `SKIP ${result.id}: ${result.title} — ${result.reason ?? 'no reason given'}`;
    case 'failed': {
      const error = result.error instanceof Error ? result.error.message : String(result.error);
      return `FAIL ${result.id}: ${result.title} — ${error}`;
    }
  }
}

function jsonResult(result: VerifyStoreResult) {
  return {
    passed: result.passed,
    failed: result.failed,
    skipped: result.skipped,
    results: result.results.map((r) => ({
      id: r.id,
      title: r.title,
      status: r.status,
      reason: r.reason,
      error: r.error === undefined ? undefined : r.error instanceof Error ? r.error.message : String(r.error),
      durationMs: r.durationMs,
    })),
  };
}

/** Runs `kode-store conformance <module>`: the agent-store suite, and the KV suite when both it and a KV harness exist. */
export async function runConformance(
  specifier: string,
  options: ConformanceCommandOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  const module = await loadModule(specifier);
  const targets = suiteTargetsFrom(module, basename(specifier).replace(/\.[cm]?[jt]s$/, ''));
  if (!targets.store && !targets.kv) {
    throw new CliError(
      `${specifier} exports no harness: export \`harness\` ({ name, create, destroy }), \`createStore\` (a store factory), ` +
        'a default of either, or `kvHarness`',
      ExitCode.usage,
    );
  }
  const onResult = options.json
    ? undefined
    : (result: CaseResult) => void writeLine(io.stdout, caseLine(result));
  const runOptions = { only: options.only, caseTimeoutMs: options.caseTimeout, onResult };
  const report: Record<string, ReturnType<typeof jsonResult> | string> = {};
  let failed = 0;

  const suites: Array<[string, Verify<never> | undefined, unknown]> = [
    ['store', conformance.verifyStore as Verify<never>, targets.store],
    ['kv', (conformance as { verifyKvStore?: Verify<never> }).verifyKvStore, targets.kv],
  ];
  for (const [suite, verify, target] of suites) {
    if (target === undefined) continue;
    if (verify === undefined) {
      report[suite] = 'not run: this build of the conformance suite has no verifyKvStore';
      if (!options.json) await writeLine(io.stdout, `${suite}: ${report[suite]}`);
      continue;
    }
    if (!options.json) await writeLine(io.stdout, `${suite} suite: ${(target as { name: string }).name}`);
    const result = await verify(target as never, runOptions);
    failed += result.failed;
    report[suite] = jsonResult(result);
    if (!options.json) {
      await writeLine(
        io.stdout,
        `${suite}: ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`,
      );
    }
  }
  if (options.json) await printJson(io, report);
  return failed === 0 ? ExitCode.ok : ExitCode.problemsFound;
}

/** Registers `conformance`. */
export function conformanceCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('conformance')
    .description(
      'Run the kode-store conformance suite against your backend, without a test runner: ' +
        'prints each case (PASS / FAIL / SKIP with its reason) and a summary; exits 1 if any case fails.',
    )
    .argument(
      '<module>',
      'a module (path or package) exporting `harness`, `createStore`, or a default of either; `kvHarness` for the KV suite',
    )
    .addOption(
      new Option(
        '--only <ids...>',
        'run only these case ids or id prefixes (e.g. events locks.cross-instance)',
      ),
    )
    .addOption(new Option('--case-timeout <ms>', 'budget of one case').argParser(positiveInteger))
    .option('--json', 'print the results as JSON')
    .addHelpText(
      'after',
      `
Example module (my-harness.mjs):
  import { MyStore } from './my-store.js';
  export const createStore = async () => new MyStore({ path: await freshTempFile() });

  kode-store conformance ./my-harness.mjs
  node --import tsx node_modules/.bin/kode-store conformance ./my-harness.ts    (TypeScript)`,
    )
    .action(
      action(io, setExit, (specifier: string, options: ConformanceCommandOptions) =>
        runConformance(specifier, options, io),
      ),
    );
  return withStandardHelp(command, { locations: false });
}
