import { ExitCode, InterruptedError } from './errors.js';

/**
 * Ctrl-C, SIGTERM and SIGHUP (a dropped ssh session) do not kill the tool: they abort `signal`, and the run
 * stops at its next safe point (before the commit: the transaction is aborted on the server, the lock
 * released, a "failed" record written; after it: the completed record is written). If it has not stopped
 * within the grace period, or on a second signal, the run is forced to end with what is known at that moment.
 */

export interface ForcedStop {
  message: string;
  exitCode: number;
  /** What must still be written before the process ends (the record of an unknown outcome); bounded. */
  beforeExit?: () => Promise<void>;
}

export interface Interruption {
  readonly signal: AbortSignal;
  /** Between stages: stop here, before anything is written, if a signal came. */
  stopIfInterrupted(): void;
  /** What a forced stop should say now; the run updates it as it passes its phases. */
  onForce(describe: () => ForcedStop): void;
  dispose(): void;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const GRACE_MS = 20_000;
/** A forced stop still writes what it must (a history record), but never waits longer than this for it. */
const BEFORE_EXIT_MS = 5_000;

/** Where signals arrive from: the process, or a test's own emitter. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface WatchOptions {
  graceMs?: number;
  /**
   * The command only reads (a preview, verify, history), named as the message says it: the first signal stops it
   * at once, with its own exit code, since there is nothing to finish or to record.
   */
  readOnly?: string;
}

export function watchSignals(
  source: SignalSource,
  report: (line: string) => void,
  force: (stop: ForcedStop) => void,
  { graceMs = GRACE_MS, readOnly }: WatchOptions = {},
): Interruption {
  const controller = new AbortController();
  let describe = (): ForcedStop => ({
    message: 'nothing was committed',
    exitCode: 1,
  });
  let timer: NodeJS.Timeout | undefined;
  let forced = false;
  const forceNow = () => {
    if (forced) return;
    forced = true;
    const stop = describe();
    report(`Forced to stop: ${stop.message}`);
    if (!stop.beforeExit) {
      force(stop);
      return;
    }
    void lastWrite(stop.beforeExit, report).then(() => force(stop));
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (readOnly !== undefined) {
      controller.abort(signal);
      const message = `${readOnly} stopped before it finished; it only reads, so nothing was changed`;
      report(`Interrupted (${signal}): ${message}`);
      force({ message, exitCode: ExitCode.stopped });
      return;
    }
    if (controller.signal.aborted) {
      forceNow();
      return;
    }
    report(`Interrupted (${signal}): stopping at the next safe point (press Ctrl-C again to stop at once)`);
    controller.abort(signal);
    timer = setTimeout(forceNow, graceMs);
    timer.unref();
  };
  for (const name of SIGNALS) source.on(name, onSignal);
  return {
    signal: controller.signal,
    stopIfInterrupted: () => {
      if (controller.signal.aborted) {
        throw new InterruptedError(
          `Interrupted (${String(controller.signal.reason)}) before anything was written`,
        );
      }
    },
    onForce: (next) => {
      describe = next;
    },
    dispose: () => {
      clearTimeout(timer);
      for (const name of SIGNALS) source.off(name, onSignal);
    },
  };
}

/** Runs the forced stop's last write, at most BEFORE_EXIT_MS, saying so when it fails. */
async function lastWrite(write: () => Promise<void>, report: (line: string) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done within ${BEFORE_EXIT_MS / 1000} s`)), BEFORE_EXIT_MS);
  });
  try {
    await Promise.race([write(), limit]);
  } catch (error) {
    report(`The record could not be written (${error instanceof Error ? error.message : String(error)})`);
  } finally {
    clearTimeout(timer);
  }
}
