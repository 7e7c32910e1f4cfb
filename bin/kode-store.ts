#!/usr/bin/env node
import { ExitCode } from './cli-io.js';
import { runCli } from './run-cli.js';

/**
 * The `kode-store` executable (package `bin`, built to dist/cli.cjs). It only
 * runs the command line on the process's arguments and streams; the command
 * line itself is `runCli` (bin/run-cli.ts), which tests import.
 */
async function main(): Promise<void> {
  // `kode-store inspect ... | head` closes the pipe early; that is the
  // reader's choice, not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.exitCode = await runCli(process.argv.slice(2));
}

main().catch((error: unknown) => {
  process.stderr.write(
    `kode-store: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = ExitCode.failed;
});
