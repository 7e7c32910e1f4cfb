import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import type {
  Profile,
  StoreHarness,
  SuiteCaseResult,
  SuiteOptions,
  SuiteResult,
} from '../../conformance/index.js';
import * as conformance from '../../conformance/index.js';
import type { ExtendedStore } from '../../src/types.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, writeLine } from '../cli-io.js';
import { action, positiveInteger, withStandardHelp } from '../command-support.js';
import { printJson } from '../output.js';

/** Options of `kode-store conformance`. */
export interface ConformanceCommandOptions {
  /** Case ids, group prefixes or globs to run (default: all). */
  only?: string[];
  /** `pattern` or `pattern=reason` entries to report as skipped. */
  skip?: string[];
  /** Levels to run (store, queryable, extended; kv for the KV suite). */
  level?: string[];
  profile?: Profile;
  caseTimeout?: number;
  json?: boolean;
}

/** A KV harness, handed to `verifyKvStore` when the suite has it. */
type KvHarness = { name: string; create(): Promise<unknown>; destroy(store: unknown): Promise<void> };
type AnyResult = SuiteResult<SuiteCaseResult & { title: string; durationMs: number }>;
type Verify = (
  harness: never,
  options: SuiteOptions & { onResult?: (r: AnyResult['results'][number]) => void },
) => Promise<AnyResult>;

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
      // A store of the SDK's plain Store level has no close().
      await (store as Partial<ExtendedStore>).close?.().catch(() => undefined);
    },
  };
}

/**
 * What a module may export, in the order looked for: `harness` (a
 * `StoreHarness`), a default export that is a harness, `createStore` or a
 * default function (a store factory: each call returns a fresh, open store;
 * `close()` is its teardown); and `kvHarness` for the KV suite.
 */
export function suiteTargetsFrom(loaded: Record<string, unknown>, name: string): LoadedSuiteTargets {
  const targets: LoadedSuiteTargets = {};
  // A CommonJS module (a .ts file compiled as CommonJS in a project without "type": "module",
  // or a .cjs file) reaches import() as { default: module.exports }: its named exports are inside.
  const inner = loaded.default;
  const module =
    !isHarness(inner) &&
    typeof inner === 'object' &&
    inner !== null &&
    ['harness', 'createStore', 'kvHarness', 'default'].some((key) => key in inner)
      ? (inner as Record<string, unknown>)
      : loaded;
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

/** TypeScript files, which Node 20 cannot load without a loader. */
const TYPESCRIPT = /\.[cm]?tsx?$/;
/** Files that are CommonJS whatever the project says: loaded with require, which a loader also hooks. */
const COMMONJS = /\.c[jt]s$/;

/**
 * Requires a TypeScript module through tsx's programmatic API (it compiles
 * .ts, .mts and .cts alike), found in the project being tested (the working
 * directory) or beside this package, so that `kode-store conformance
 * harness.ts` works without `node --import tsx`. Undefined when tsx is not
 * installed.
 */
function requireTypeScript(path: string): Record<string, unknown> | undefined {
  for (const base of [join(process.cwd(), 'noop.js'), fileURLToPath(import.meta.url)]) {
    const from = createRequire(base);
    let api: string;
    try {
      api = from.resolve('tsx/cjs/api');
    } catch {
      continue;
    }
    const tsx = from(api) as { require(id: string, parent: string): Record<string, unknown> };
    return tsx.require(path, base);
  }
  return undefined;
}

/** Whether `error` says Node could not read a TypeScript file by itself. */
function needsLoader(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ERR_UNKNOWN_FILE_EXTENSION' || error instanceof SyntaxError;
}

function loadFailure(specifier: string, error: unknown): CliError {
  return new CliError(
    `module ${JSON.stringify(specifier)} could not be loaded: ${(error as Error).message}`,
    ExitCode.usage,
  );
}

/** Imports a module by path (relative to the working directory) or package name. */
async function loadModule(specifier: string): Promise<Record<string, unknown>> {
  const asPath = resolve(specifier);
  let path: string;
  if (existsSync(asPath)) {
    path = asPath;
  } else {
    try {
      path = createRequire(join(process.cwd(), 'noop.js')).resolve(specifier);
    } catch {
      throw new CliError(
        `module ${JSON.stringify(specifier)} not found (a path or an installed package)`,
        ExitCode.usage,
      );
    }
  }
  try {
    if (COMMONJS.test(path)) return createRequire(path)(path) as Record<string, unknown>;
    return await importNative(pathToFileURL(path).href);
  } catch (error) {
    if (!TYPESCRIPT.test(path) || !needsLoader(error)) throw loadFailure(specifier, error);
    let loaded: Record<string, unknown> | undefined;
    try {
      loaded = requireTypeScript(path);
    } catch (tsError) {
      throw loadFailure(specifier, tsError);
    }
    if (loaded) return loaded;
    throw new CliError(
      `module ${JSON.stringify(specifier)} is TypeScript and no TypeScript loader was found: ` +
        'install tsx in the project (npm install --save-dev tsx), or compile the harness to JavaScript',
      ExitCode.usage,
    );
  }
}

/** `pattern=reason` entries of --skip as a skip list; a bare pattern gets a reason saying where it came from. */
function skipList(entries: string[] | undefined): Record<string, string> | undefined {
  if (!entries) return undefined;
  const list: Record<string, string> = {};
  for (const entry of entries) {
    const at = entry.indexOf('=');
    const pattern = at === -1 ? entry : entry.slice(0, at);
    const reason = at === -1 ? '' : entry.slice(at + 1).trim();
    list[pattern] = reason || 'skipped on the command line (--skip)';
  }
  return list;
}

function caseLine(result: AnyResult['results'][number]): string {
  const ms = `${Math.round(result.durationMs)} ms`;
  switch (result.status) {
    case 'passed':
      return `PASS ${result.id}: ${result.title} (${ms})`;
    case 'skipped':
      return `SKIP ${result.id}: ${result.title} — ${result.reason ?? 'no reason given'}`;
    case 'failed':
      return `FAIL ${result.id}: ${result.title} — ${result.error?.message ?? 'no error given'}`;
  }
}

/** The lines after a suite's cases: profile and level, the score of each, the totals. */
function summaryLines(suite: string, result: AnyResult): string[] {
  return [
    ...conformance.formatSummary(result).map((line) => `${suite}: ${line}`),
    `${suite}: ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped`,
  ];
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
  // Lines are written one after another: hundreds of writes at once would pile up listeners on a slow pipe.
  let written: Promise<void> = Promise.resolve();
  const onResult = options.json
    ? undefined
    : (result: AnyResult['results'][number]) => {
        written = written.then(() => writeLine(io.stdout, caseLine(result)));
      };
  const storeLevels = (options.level ?? []).filter((l) => l !== 'kv');
  const kvLevels = (options.level ?? []).filter((l) => l === 'kv');
  const report: Record<string, AnyResult | string> = {};
  let failed = 0;

  const suites: Array<[string, Verify, unknown, string[]]> = [
    ['store', conformance.verifyStore as unknown as Verify, targets.store, storeLevels],
    ['kv', conformance.verifyKvStore as unknown as Verify, targets.kv, kvLevels],
  ];
  for (const [suite, verify, target, levels] of suites) {
    if (target === undefined) {
      report[suite] =
        `not run: ${specifier} exports no ${suite === 'kv' ? '`kvHarness`' : 'agent-store harness'}`;
      if (!options.json) await writeLine(io.stdout, `${suite}: ${report[suite]}`);
      continue;
    }
    if (options.level && levels.length === 0) {
      report[suite] = `not run: none of its levels was chosen (--level ${options.level.join(' ')})`;
      if (!options.json) await writeLine(io.stdout, `${suite}: ${report[suite]}`);
      continue;
    }
    if (!options.json) await writeLine(io.stdout, `${suite} suite: ${(target as { name: string }).name}`);
    const result = await verify(target as never, {
      only: options.only,
      skip: skipList(options.skip),
      ...(levels.length > 0 ? { levels } : {}),
      profile: options.profile,
      caseTimeoutMs: options.caseTimeout,
      onResult,
    }).catch((error: unknown) => {
      // What was asked for names no case (or the harness's own skip list does): a usage mistake.
      if ((error as { code?: unknown }).code === 'KODE_CONFORMANCE_SELECTION') {
        throw new CliError((error as Error).message, ExitCode.usage);
      }
      throw error;
    });
    await written;
    failed += result.failed;
    report[suite] = result;
    if (!options.json) for (const line of summaryLines(suite, result)) await writeLine(io.stdout, line);
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
      'a module (path or package; .js .mjs .cjs .ts .mts .cts) exporting `harness`, `createStore`, or a default of either; `kvHarness` for the KV suite',
    )
    .addOption(
      new Option(
        '--profile <profile>',
        'sdk: what the KODE SDK relies on (any rejection counts, our error codes are not asked); strict: all of SPEC',
      )
        .choices(['sdk', 'strict'])
        .default('strict'),
    )
    .addOption(
      new Option(
        '--level <levels...>',
        'run only these levels: store, queryable, extended (agent-store suite), kv (KV suite); default: what the store implements',
      ).choices(['store', 'queryable', 'extended', 'kv']),
    )
    .addOption(
      new Option(
        '--only <patterns...>',
        "run only these cases: ids, group prefixes or globs (e.g. events locks.cross-instance 'query-grid.*')",
      ),
    )
    .addOption(
      new Option(
        '--skip <patterns...>',
        "report these cases as skipped: pattern or pattern=reason (e.g. 'query-grid.*=slow here')",
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
  kode-store conformance ./my-harness.ts --profile sdk    (TypeScript: loaded through tsx, installed in the project)`,
    )
    .action(
      action(io, setExit, (specifier: string, options: ConformanceCommandOptions) =>
        runConformance(specifier, options, io),
      ),
    );
  return withStandardHelp(command, { locations: false });
}
