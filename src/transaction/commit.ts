import { CommitUnknownError, ExitCode, errorMessage, RuntimeError } from '../shared/errors.js';
import type { ForcedStop, Interruption } from '../shared/interrupt.js';
import type { Output } from '../shared/output.js';
import type { Settled, Store } from '../store/types.js';
import { fenceDocument } from './journal.js';

/** A change that commits in one transaction and leaves a journal document with the run's id. */
export interface Committing {
  store: Store;
  journal: string;
  /** The run's id: the journal document its transaction inserts, and the fence's _id. */
  id: string;
  /** `migration` or `rollback`, as the messages name it. */
  what: string;
  /** How an operator finds out, when the tool cannot. */
  check: string;
  output: Output;
  interruption: Interruption;
  /** Appends the `unknown` record, when a forced stop ends the run while the outcome is not known. */
  recordUnknown: (failure: CommitUnknownError) => Promise<void>;
}

/**
 * Runs the transaction, and settles a commit whose answer was lost instead of guessing: the fence either lands
 * (nothing committed, and now nothing can) or the majority-committed journal document says what happened (the
 * run's own: committed; the fence of an earlier attempt: not). Settling is bounded and says what it does; when
 * it cannot tell within its bound, or is interrupted, the outcome is UNKNOWN (exit 5) and recorded as such,
 * also when a forced stop ends the run.
 */
export async function commitSettled<T>(
  transaction: (onCommit: () => void) => Promise<T>,
  run: Committing,
): Promise<T> {
  const unknownStop = (message: string): ForcedStop => ({
    message,
    exitCode: ExitCode.unknown,
    beforeExit: () =>
      run.recordUnknown(new CommitUnknownError(message, undefined, { context: { check: run.check } })),
  });
  const onCommit = () =>
    run.interruption.onForce(() =>
      unknownStop(`the commit of ${run.what} ${run.id} was in flight: its outcome is unknown. ${run.check}`),
    );
  try {
    return await transaction(onCommit);
  } catch (error) {
    if (!(error instanceof CommitUnknownError)) throw error;
    const lost = errorMessage(error.cause);
    run.output.progress(`  ${error.message}; asking the server whether it committed`);
    run.interruption.onForce(() =>
      unknownStop(
        `stopped while asking whether ${run.what} ${run.id} committed: its outcome is unknown. ${run.check}`,
      ),
    );
    // A stop asked for during the commit lets the question be asked (a second signal, or the grace period,
    // still forces the end); one asked for while asking ends the asking.
    const { signal } = run.interruption;
    let outcome: Settled;
    try {
      outcome = await run.store.settle(run.journal, run.id, fenceDocument(lost), {
        report: (line) => run.output.progress(line),
        ...(signal.aborted ? {} : { signal }),
      });
    } catch (settleError) {
      throw new CommitUnknownError(
        `The outcome of ${run.what} ${run.id} is UNKNOWN: the commit was sent but not confirmed (${lost}), and the server could not tell (${errorMessage(settleError)}). ${run.check}`,
        error.result,
        { cause: error, context: { check: run.check } },
      );
    }
    if (outcome === 'not-committed') {
      throw new RuntimeError(
        `The commit was not confirmed (${lost}); the server confirms nothing was committed (journal ${run.id} fenced). Run --preview and try again`,
        { cause: error },
      );
    }
    run.output.progress(`  the server confirms the ${run.what} committed`);
    return error.result as T;
  }
}
