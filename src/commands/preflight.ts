import { checkHistoryFile } from '../files/history.js';
import type { Refusal } from '../report/report.js';
import { asMigrationError } from '../shared/errors.js';
import { checkSnapshotWritable } from '../store/snapshot.js';
import type { Place } from './command.js';

/**
 * The checks an execution (or a rollback) makes before writing anything, as refusals to show instead of errors to
 * throw.
 */
export async function executionRefusals(command: Pick<Place, 'historyFile' | 'target'>): Promise<Refusal[]> {
  const checks = [() => checkHistoryFile(command.historyFile)];
  if (command.target.kind === 'snapshot') {
    const file = command.target.file;
    checks.push(() => checkSnapshotWritable(file));
  }
  const refusals: Refusal[] = [];
  for (const check of checks) {
    try {
      await check();
    } catch (error) {
      const failure = asMigrationError(error);
      refusals.push({ message: failure.message, exitCode: failure.exitCode });
    }
  }
  return refusals;
}
