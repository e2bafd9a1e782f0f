import createDebug from 'debug';
import { type Applied, applyMigration } from './apply.js';
import { ConflictError, ExitCode, type MigrationError, RuntimeError } from './errors.js';
import {
  appendHistory,
  completedRecord,
  failedRecord,
  lockHistory,
  type RunFacts,
  readHistory,
} from './history.js';
import type { MigrateCommand } from './options.js';
import type { Output } from './output.js';
import { planJson, renderCompleted, renderConflictAbort, renderPlan, renderProgress } from './report.js';
import { resolveCustomers } from './resolve.js';
import { type Plan, scanMigration } from './scan.js';
import { loadReferenceMap } from './schema.js';
import type { Store, StoreTarget } from './store/types.js';

const log = createDebug('agm:migrate-customer-data');

/**
 * Input is checked before anything is written (exit 2, no record). Then, holding the history lock: the
 * server is checked for transactions, the plan is shown, and the migration runs in one transaction. Every
 * outcome after that point, success or failure, is appended to the history file.
 */
export async function executeMigration(
  command: MigrateCommand,
  output: Output,
  openStore: (target: StoreTarget) => Promise<Store>,
): Promise<ExitCode> {
  await readHistory(command.historyFile);
  const map = await loadReferenceMap(command.configFile);
  const store = await openStore(command.target);
  try {
    const customers = await resolveCustomers(store, command.request);
    const lock = await lockHistory(command.historyFile);
    const run: RunFacts = {
      startedAt: new Date(),
      target: store.description,
      request: command.request,
      options: command.options,
    };
    try {
      let plan: Plan | undefined;
      let applied: Applied;
      try {
        await store.assertTransactional();
        plan = await scanMigration(store, customers, command.options, map, run.startedAt);
        output.report(renderPlan(plan, store.description, 'execute'));
        if (plan.blocked) throw conflictAbort(plan);
        output.progress('Applying in one transaction:');
        applied = await applyMigration(
          store,
          { ...command.request, options: command.options, map, expectPlan: command.expectPlan },
          {
            onStep: (result) => output.progress(renderProgress(result)),
            onAttempt: (attempt) => {
              if (attempt > 1)
                output.progress(`  transaction retried by MongoDB (attempt ${attempt}); re-reading`);
            },
          },
        );
      } catch (error) {
        const failure = asMigrationError(error);
        const failedPlan = (failure.context.plan as Plan | undefined) ?? plan;
        if (failure instanceof ConflictError && failedPlan) output.error(renderConflictAbort(failedPlan));
        const record = failedRecord(run, failure, failedPlan);
        await appendHistory(command.historyFile, record);
        log('failed: %O', error);
        if (command.json) {
          output.json({
            mode: 'execute',
            status: 'failed',
            error: record.error,
            record,
            plan: failedPlan && planJson(failedPlan),
          });
        }
        throw failure;
      }
      const record = completedRecord(run, applied);
      try {
        await appendHistory(command.historyFile, record);
      } catch (error) {
        output.error(JSON.stringify(record, null, 2));
        throw new RuntimeError(
          `The migration COMPLETED, but its record could not be appended to ${command.historyFile} (${(error as Error).message}); save the record printed above`,
          { cause: error },
        );
      }
      if (command.json)
        output.json({ mode: 'execute', status: 'completed', record, plan: planJson(applied.plan) });
      else output.report(renderCompleted(record, command.historyFile));
      return ExitCode.ok;
    } finally {
      await lock.release();
    }
  } finally {
    await store.close();
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
    `Unexpected error: ${error instanceof Error ? error.message : String(error)}; nothing was committed (details: DEBUG=agm:*)`,
    { cause: error },
  );
}
