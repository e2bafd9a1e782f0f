import { checkHistoryFile } from '../files/history.js';
import { checkLockFree, lockFileOf } from '../files/lock-file.js';
import type { Refusal } from '../report/report.js';
import { asMigrationError } from '../shared/errors.js';
import { dumpReplaceProblem } from '../store/dump.js';
import { snapshotReplaceProblem } from '../store/snapshot.js';
import type { Place } from './command.js';

/** The checks an execution (or a rollback) makes before writing anything, as a preview shows them. */
export interface ExecutionChecks {
  /** What would refuse the execution (the history file, a held lock): the preview exits with execute's code. */
  refusals: Refusal[];
  /**
   * What execute would refuse about this copy of the data only (a read-only snapshot): a preview, which only
   * reads it, still runs and passes, and says what to do before executing.
   */
  cautions: string[];
}

export async function executionChecks(
  command: Pick<Place, 'historyFile' | 'target'>,
): Promise<ExecutionChecks> {
  const refusals: Refusal[] = [];
  const cautions: string[] = [];
  const refuseOn = async (check: () => Promise<void>) => {
    try {
      await check();
    } catch (error) {
      const failure = asMigrationError(error);
      refusals.push({ message: failure.message, exitCode: failure.exitCode });
    }
  };
  await refuseOn(() => checkHistoryFile(command.historyFile));
  if (command.target.kind === 'snapshot') {
    const file = command.target.file;
    await refuseOn(async () => {
      const problem = await snapshotReplaceProblem(file);
      if (problem) cautions.push(problem);
    });
    await refuseOn(() => checkLockFree(lockFileOf(file)));
  }
  if (command.target.kind === 'dump') {
    const dir = command.target.dir;
    await refuseOn(async () => {
      const check = await dumpReplaceProblem(dir);
      if (check.problem) cautions.push(check.problem);
      await checkLockFree(lockFileOf(check.dir));
    });
  }
  return { refusals, cautions };
}
