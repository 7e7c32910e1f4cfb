import { CliError, type CliIo, ExitCode, type ExitCodeValue } from './cli-io.js';
import type { OpenedLocation } from './open-location.js';

/**
 * `inspect <location> kv [instance [namespace]]`.
 * HOOK: the KV layer (src/kv, `store.kv`) has not landed yet.
 */
export async function inspectKv(
  _io: CliIo,
  opened: OpenedLocation,
  _args: string[],
  _options: { limit: number; offset: number; json?: boolean },
): Promise<ExitCodeValue> {
  if (opened.kind === 'json') throw new CliError('a json: location has no KV data', ExitCode.usage);
  throw new CliError(`${opened.label} has no KV API in this build`, ExitCode.usage);
}
