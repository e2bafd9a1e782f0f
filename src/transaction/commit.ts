import { CommitUnknownError, ExitCode, errorMessage, RuntimeError } from '../shared/errors.js';
import type { Interruption } from '../shared/interrupt.js';
import type { Output } from '../shared/output.js';
import type { Store } from '../store/types.js';
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
}

/**
 * Runs the transaction, and settles a commit whose answer was lost instead of guessing: the fence either lands
 * (nothing committed, and now nothing can) or finds the run's journal document (committed, and majority-read to
 * be sure). Only when the server cannot be asked is the outcome UNKNOWN.
 */
export async function commitSettled<T>(
  transaction: (onCommit: () => void) => Promise<T>,
  run: Committing,
): Promise<T> {
  const onCommit = () =>
    run.interruption.onForce(() => ({
      message: `the commit of ${run.what} ${run.id} was in flight: its outcome is unknown. ${run.check}`,
      exitCode: ExitCode.unknown,
    }));
  try {
    return await transaction(onCommit);
  } catch (error) {
    if (!(error instanceof CommitUnknownError)) throw error;
    const lost = errorMessage(error.cause);
    run.output.progress(`  ${error.message}; asking the server whether it committed`);
    let outcome: 'committed' | 'not-committed';
    try {
      outcome = await run.store.settle(run.journal, run.id, fenceDocument(lost));
    } catch (settleError) {
      throw new CommitUnknownError(
        `The outcome of ${run.what} ${run.id} is UNKNOWN: the commit was sent but not confirmed (${lost}), and the server could not be asked (${errorMessage(settleError)}). ${run.check}`,
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
