import { MultiBar, type SingleBar } from 'cli-progress';
import { type CliIo, writeLine } from './cli-io.js';

/**
 * Progress of a command that works through a known number of units (agents).
 * On a terminal: a bar with counts and an ETA, with notes printed above it.
 * Otherwise (a pipe, a CI log): one plain line per unit, nothing redrawn.
 */
export interface Progress {
  start(total: number): void;
  /** Advances by one unit; `line` describes it (printed as-is when not interactive). */
  tick(line: string): Promise<void>;
  /** Counts events copied inside the current unit (a long event log moves the bar before its agent is done). */
  addEvents(count: number): void;
  /** A line that must not be lost under the bar (a warning, a skipped file). */
  note(line: string): Promise<void>;
  stop(): void;
}

/** Plain lines, for logs and pipes. */
class LineProgress implements Progress {
  private total = 0;
  private done = 0;
  constructor(
    private readonly io: CliIo,
    private readonly label: string,
  ) {}
  start(total: number): void {
    this.total = total;
    this.done = 0;
  }
  async tick(line: string): Promise<void> {
    this.done++;
    await writeLine(this.io.stderr, `${this.label} [${this.done}/${this.total}] ${line}`);
  }
  async note(line: string): Promise<void> {
    await writeLine(this.io.stderr, `${this.label}: ${line}`);
  }
  addEvents(): void {}
  stop(): void {}
}

/** A cli-progress bar on stderr (stdout stays clean for `--json` and exports). */
class BarProgress implements Progress {
  private readonly multibar: MultiBar;
  private bar: SingleBar | undefined;
  private events = 0;
  constructor(io: CliIo, label: string, unit: string) {
    this.multibar = new MultiBar({
      stream: io.stderr as unknown as NodeJS.WritableStream,
      format: `${label} [{bar}] {value}/{total} ${unit} | {events} events | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
    });
  }
  start(total: number): void {
    this.bar = this.multibar.create(total, 0, { events: 0 });
  }
  async tick(): Promise<void> {
    this.bar?.increment(1, { events: this.events });
  }
  addEvents(count: number): void {
    this.events += count;
    this.bar?.update({ events: this.events });
  }
  async note(line: string): Promise<void> {
    this.multibar.log(`${line}\n`);
  }
  stop(): void {
    this.multibar.stop();
  }
}

/** A bar when the user watches a terminal, plain lines otherwise. */
export function createProgress(io: CliIo, label: string, unit: string): Progress {
  return io.interactive ? new BarProgress(io, label, unit) : new LineProgress(io, label);
}
