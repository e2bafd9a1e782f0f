import createDebug from 'debug';
import { type Applied, applyMigration } from './apply.js';
import { ConflictError, ExitCode, errorMessage, type MigrationError, RuntimeError } from './errors.js';
import { appendHistory, checkHistoryFile, type HistoryLock, lockHistory } from './history.js';
import type { MigrateCommand } from './options.js';
import type { Output } from './output.js';
import { completedRecord, failedRecord, type HistoryRecord, type RunFacts } from './record.js';
import { planJson, renderCompleted, renderConflictAbort, renderPlan, renderProgress } from './report.js';
import { resolveCustomers } from './resolve.js';
import { type Plan, scanMigration } from './scan.js';
import { loadReferenceMap, mapCollections, type ReferenceMap } from './schema.js';
import { describeTarget, type OpenOptions } from './store/index.js';
import type { Store, StoreTarget } from './store/types.js';

const log = createDebug('agm:migrate-customer-data');

/**
 * Input is checked before anything is written: an input error (exit 2) leaves no trace, not even a history
 * record. From there every outcome is recorded: the customers are resolved, the history lock is taken, the
 * server is checked for transactions, the plan is shown, and the migration runs in one transaction.
 */
export async function executeMigration(
  command: MigrateCommand,
  output: Output,
  openStore: (target: StoreTarget, options?: OpenOptions) => Promise<Store>,
): Promise<ExitCode> {
  await checkHistoryFile(command.historyFile);
  const map = await loadReferenceMap(command.configFile);
  const run: RunFacts = {
    startedAt: new Date(),
    target: describeTarget(command.target),
    request: command.request,
    options: command.options,
  };
  let store: Store | undefined;
  let lock: HistoryLock | undefined;
  let plan: Plan | undefined;
  try {
    store = await openStore(command.target, { requiredCollections: mapCollections(map) });
    const customers = await resolveCustomers(store, command.request);
    lock = await lockHistory(command.historyFile);
    await store.assertTransactional();
    plan = await scanMigration(store, customers, command.options, map, run.startedAt);
    output.report(renderPlan(plan, store.description, 'execute'));
    if (plan.blocked) throw conflictAbort(plan);
    const applied = await apply(store, command, map, output);
    const record = completedRecord(run, applied);
    await recordCompleted(command.historyFile, record, output);
    if (command.json)
      output.json({ mode: 'execute', status: 'completed', record, plan: planJson(applied.plan) });
    else output.report(renderCompleted(record, command.historyFile));
    return ExitCode.ok;
  } catch (error) {
    const failure = asMigrationError(error);
    log('failed: %O', error);
    if (failure.exitCode !== ExitCode.usage && !failure.context.unrecordable) {
      const failedPlan = (failure.context.plan as Plan | undefined) ?? plan;
      if (failure instanceof ConflictError && failedPlan) output.error(renderConflictAbort(failedPlan));
      lock ??= await lockHistory(command.historyFile);
      const record = failedRecord(run, failure, failedPlan);
      await appendHistory(command.historyFile, record);
      if (command.json) {
        output.json({
          mode: 'execute',
          status: 'failed',
          error: record.error,
          record,
          plan: failedPlan && planJson(failedPlan),
        });
      }
    }
    throw failure;
  } finally {
    await lock?.release();
    await store?.close();
  }
}

function apply(store: Store, command: MigrateCommand, map: ReferenceMap, output: Output): Promise<Applied> {
  output.progress('Applying in one transaction:');
  return applyMigration(
    store,
    { ...command.request, options: command.options, map, expectPlan: command.expectPlan },
    {
      onStep: (result) => output.progress(renderProgress(result)),
      onAttempt: (attempt) => {
        if (attempt > 1) output.progress(`  transaction retried by MongoDB (attempt ${attempt}); re-reading`);
      },
    },
  );
}

/** After the commit the record must not be lost: if the file cannot take it, it is printed instead. */
async function recordCompleted(file: string, record: HistoryRecord, output: Output): Promise<void> {
  try {
    await appendHistory(file, record);
  } catch (error) {
    output.error(JSON.stringify(record, null, 2));
    throw new RuntimeError(
      `The migration COMPLETED, but its record could not be appended to ${file} (${(error as Error).message}); save the record printed above`,
      { cause: error, context: { unrecordable: true } },
    );
  }
}

function conflictAbort(plan: Plan): ConflictError {
  const blocking = plan.conflicts.filter((c) => c.resolution.action === 'block').length;
  const why = plan.options.mergeConflicts
    ? `${blocking} conflict(s) cannot be merged; rename those accounts first`
    : 'rename the accounts first, or re-run with --merge-conflicts';
  return new ConflictError(
    `Migration aborted due to conflicts (${plan.conflicts.length}); nothing was changed; ${why}`,
    { context: { plan } },
  );
}

export function asMigrationError(error: unknown): MigrationError {
  if (error instanceof Error && 'exitCode' in error && 'context' in error) return error as MigrationError;
  return new RuntimeError(
    `Unexpected error: ${errorMessage(error)}; nothing was committed (details: DEBUG=agm:*)`,
    { cause: error },
  );
}
