import { randomBytes } from 'node:crypto';
import { createWriteStream, openSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Command } from 'commander';
import { exportAgentRecords, exportHeader, formatExportLine } from '../../src/transfer/export-format.js';
import { POOL_META_ID } from '../../src/transfer/json-store-layout.js';
import { CliError, type CliIo, ExitCode, type ExitCodeValue, write, writeLine } from '../cli-io.js';
import {
  action,
  eventOrderOption,
  open,
  printProblems,
  withLocation,
  withStandardHelp,
} from '../command-support.js';
import { kvExportRecords } from '../kv-copy.js';
import { createProgress } from '../progress.js';

/** Options of `kode-store export`. */
export interface ExportOptions {
  agents?: string;
  /** A file to write instead of stdout. */
  output?: string;
  skipCorrupt?: boolean;
  eventOrder?: 'timestamp' | 'seq';
}

/**
 * `--output`: a temporary file beside the target (same directory, so the
 * rename is atomic), renamed over it only once the export is complete, and
 * removed on failure, so the target is never a partial export.
 */
class OutputFile {
  readonly stream: Writable;
  private readonly temporary: string;

  constructor(readonly target: string) {
    this.temporary = join(
      dirname(target),
      `.${basename(target)}.kode-store-${process.pid}-${randomBytes(4).toString('hex')}.tmp`,
    );
    let fd: number;
    try {
      // Opened here, not by the stream, so that a directory that does not exist or cannot be written is said at once.
      fd = openSync(this.temporary, 'wx');
    } catch (error) {
      throw new CliError(`cannot write ${target}: ${(error as Error).message}`, ExitCode.usage);
    }
    this.stream = createWriteStream(this.temporary, { fd });
    // A failed write (a full disk) is seen by the next write() and by commit(), not as an uncaught event.
    this.stream.on('error', () => {});
  }

  async commit(): Promise<void> {
    this.stream.end();
    await finished(this.stream);
    await rename(this.temporary, this.target);
  }

  async discard(): Promise<void> {
    this.stream.destroy();
    await finished(this.stream).catch(() => undefined);
    await unlink(this.temporary).catch(() => undefined);
  }
}

/**
 * Runs `kode-store export`: the header, every agent (all its records, then
 * `agentEnd`), the KV data, and the `end` line, to stdout or `--output`.
 * A cut-off export has no `end` line, which `import` detects; `--output`
 * is written only when complete.
 */
export async function runExport(
  location: string | undefined,
  options: ExportOptions,
  io: CliIo,
): Promise<ExitCodeValue> {
  const opened = await open(io, location, {
    skipCorrupt: options.skipCorrupt,
    eventOrder: options.eventOrder,
  });
  return withLocation(opened, async () => {
    const ids = await opened.source.list(options.agents);
    if (opened.kind === 'json') {
      const problems = await opened.reader.scan(ids);
      if (problems.length > 0 && !options.skipCorrupt) {
        await printProblems(io, 'corrupt: ', problems);
        await writeLine(
          io.stderr,
          'kode-store export: nothing was exported; re-run with --skip-corrupt to export everything else.',
        );
        return ExitCode.problemsFound;
      }
      await printProblems(io, 'skipping corrupt: ', problems);
      // The pool's shutdown record travels as agent "__pool_meta__" (see migrate).
      if (
        (options.agents === undefined || POOL_META_ID.startsWith(options.agents)) &&
        (await opened.reader.loadPoolRecord())
      ) {
        ids.push(POOL_META_ID);
      }
    }
    const file = options.output === undefined ? undefined : new OutputFile(options.output);
    const out: Writable = file?.stream ?? io.stdout;
    const progress = createProgress(io, 'export', 'agents');
    const totals = { agents: 0, kvInstances: 0, kvRecords: 0 };
    let exporting: string | undefined;
    progress.start(ids.length);
    try {
      await write(out, `${formatExportLine(exportHeader(opened.backend))}\n`);
      for (const agentId of ids) {
        exporting = agentId;
        let events = 0;
        for await (const record of exportAgentRecords(opened.source, agentId)) {
          if (record.type === 'event') {
            events++;
            if (events % 500 === 0) progress.addEvents(500);
          }
          await write(out, `${formatExportLine(record)}\n`);
        }
        totals.agents++;
        progress.addEvents(events % 500);
        await progress.tick(`${agentId}: ${events} events`);
      }
      for await (const record of kvExportRecords(opened)) {
        if (record.type === 'kvInstance') totals.kvInstances++;
        if (record.type === 'kvRecord') totals.kvRecords++;
        await write(out, `${formatExportLine(record)}\n`);
      }
      await write(out, `${formatExportLine({ type: 'end', ...totals })}\n`);
      await file?.commit();
      exporting = undefined;
    } catch (error) {
      await file?.discard();
      await writeLine(
        io.stderr,
        `kode-store export: stopped${exporting === undefined ? '' : ` at agent ${JSON.stringify(exporting)}`}` +
          (file ? `; ${file.target} was not written` : '; the output is incomplete (it has no "end" line)'),
      );
      throw error;
    } finally {
      progress.stop();
    }
    await writeLine(
      io.stderr,
      `exported ${totals.agents} agent(s), ${totals.kvInstances} KV instance(s), ${totals.kvRecords} KV record(s) from ${opened.label}`,
    );
    return ExitCode.ok;
  });
}

/** Registers `export`. */
export function exportCommand(io: CliIo, setExit: (code: ExitCodeValue) => void): Command {
  const command = new Command('export')
    .description(
      'Write a store (every agent and its records, and the KV data) as portable JSON Lines: ' +
        'a header {"format":"kode-store-export","version":1}, one record per line, an "end" line. ' +
        'Import it into any backend with `kode-store import`.',
    )
    .argument('[location]', 'the store to export (default: the environment)')
    .option('--agents <prefix>', 'only agents whose id starts with <prefix>')
    .option('-o, --output <file>', 'write to <file> instead of stdout')
    .option('--skip-corrupt', 'json: locations: leave out corrupt files (each is named) instead of stopping')
    .addOption(eventOrderOption())
    .addHelpText(
      'after',
      '\nExample:\n  kode-store export sqlite:./data/agents.db --agents agt- > backup.jsonl',
    )
    .action(
      action(io, setExit, (location: string | undefined, options: ExportOptions) =>
        runExport(location, options, io),
      ),
    );
  return withStandardHelp(command);
}
