import { SingleBar } from 'cli-progress';

/**
 * Progress of a run: which backend and workload is running and what it is
 * doing. On a terminal, one bar redrawn in place on stderr; otherwise (CI
 * logs, the test suite) plain lines, so nothing is lost and nothing redrawn.
 */
export interface BenchProgress {
  start(totalTasks: number): void;
  /** A new backend × workload task begins. */
  task(label: string): void;
  /** The running task's current step. */
  phase(text: string): void;
  /** A line that must stay visible (a skip, an error). */
  note(line: string): void;
  stop(): void;
}

class LineProgress implements BenchProgress {
  private total = 0;
  private done = 0;
  constructor(private readonly out: NodeJS.WritableStream) {}
  start(totalTasks: number): void {
    this.total = totalTasks;
  }
  task(label: string): void {
    this.done++;
    this.out.write(`[${this.done}/${this.total}] ${label}\n`);
  }
  phase(text: string): void {
    this.out.write(`    ${text}\n`);
  }
  note(line: string): void {
    this.out.write(`${line}\n`);
  }
  stop(): void {}
}

class BarProgress implements BenchProgress {
  private readonly bar: SingleBar;
  private started = false;
  private label = '';
  constructor(private readonly out: NodeJS.WritableStream) {
    this.bar = new SingleBar({
      stream: out,
      format: 'bench [{bar}] {value}/{total} | {label} | {phase}',
      hideCursor: true,
      clearOnComplete: true,
      barsize: 20,
    });
  }
  start(totalTasks: number): void {
    this.bar.start(totalTasks, 0, { label: '', phase: '' });
    this.started = true;
  }
  task(label: string): void {
    if (this.label !== '') this.bar.increment(1);
    this.label = label;
    this.bar.update({ label, phase: '' });
  }
  phase(text: string): void {
    this.bar.update({ label: this.label, phase: text });
  }
  note(line: string): void {
    // A SingleBar has no log area: stop it, print, and restart it at the same place.
    const value = this.bar.getProgress() * this.bar.getTotal();
    this.bar.stop();
    this.out.write(`${line}\n`);
    if (this.started)
      this.bar.start(this.bar.getTotal(), Math.round(value), { label: this.label, phase: '' });
  }
  stop(): void {
    if (this.label !== '') this.bar.increment(1);
    this.bar.stop();
    this.started = false;
  }
}

/** A bar on a terminal, plain lines otherwise. */
export function createBenchProgress(out: NodeJS.WriteStream = process.stderr): BenchProgress {
  return out.isTTY ? new BarProgress(out) : new LineProgress(out);
}
