import createDebug from 'debug';
import { appendHistory, checkHistoryFile, type HistoryLock, lockHistory } from '../files/history.js';
import { recountStragglers, usernameClashes } from '../plan/after-commit.js';
import { checkDatabase } from '../plan/database.js';
import { arrivalsOf, type PriorMigration } from '../plan/prior.js';
import { resolveCustomers } from '../plan/resolve.js';
import { isBlocked, nothingToDo, type Plan, scanMigration } from '../plan/scan.js';
import { loadReferenceMap, mappedCollections, type ReferenceMap } from '../plan/schema.js';
import { assessPlan } from '../plan/server-checks.js';
import { commandLine } from '../report/command-line.js';
import {
  clashRecord,
  completedRecord,
  failedRecord,
  type HistoryRecord,
  newRunId,
  noopRecord,
  type RunFacts,
} from '../report/record.js';
import {
  clashAdvice,
  duration,
  nothingToDoText,
  type PlanView,
  planJson,
  renderClashes,
  renderCompleted,
  renderPlan,
  renderProgress,
  renderStepStart,
  renderStragglers,
} from '../report/report.js';
import {
  asMigrationError,
  BlockedError,
  CompletedUnrecordedError,
  ExitCode,
  errorMessage,
} from '../shared/errors.js';
import type { Output } from '../shared/output.js';
import { describeTarget } from '../store/index.js';
import type { Store } from '../store/types.js';
import { type Applied, applyMigration, NothingToDo } from '../transaction/apply.js';
import { commitSettled } from '../transaction/commit.js';
import type { MigrateCommand } from './command.js';
import type { ActionContext } from './context.js';
import { phase } from './progress.js';
import { recordCommitted } from './record-committed.js';

const log = createDebug('agm:migrate-customer-data');

/**
 * Input is checked before anything is written: an input error (exit 2) leaves no trace, not even a history
 * record. From there every outcome is recorded: the customers are resolved, the history lock is taken, the
 * server is checked, the plan is shown, and the migration runs in one transaction with its journal. After
 * the commit, what was committed is recorded whatever else happens.
 */
export async function executeMigration(
  command: MigrateCommand,
  output: Output,
  context: ActionContext,
): Promise<ExitCode> {
  await checkHistoryFile(command.historyFile);
  const map = await loadReferenceMap(command.configFile);
  const run: RunFacts = {
    id: newRunId(),
    startedAt: new Date(),
    target: describeTarget(command.target),
    request: command.request,
    options: command.options,
    secretFields: map.secretFields,
  };
  const { interruption } = context;
  interruption.onForce(() => ({
    message: 'stopped before the commit: nothing was committed',
    exitCode: ExitCode.failed,
  }));
  let store: Store | undefined;
  let lock: HistoryLock | undefined;
  let plan: Plan | undefined;
  try {
    const opened = await phase(output, `Reading ${run.target}`, () =>
      context.openStore(command.target, {
        requiredCollections: mappedCollections(map),
        signal: interruption.signal,
      }),
    );
    store = opened;
    await checkDatabase(store);
    const customers = await resolveCustomers(store, command.request);
    lock = await lockHistory(command.historyFile);
    await store.assertTransactional();
    const planned = await phase(output, 'Planning', async () => {
      const facts = await opened.inspect([...mappedCollections(map), map.journalCollection]);
      const scanned = await scanMigration(opened, customers, command.options, map, {
        id: run.id,
        now: run.startedAt,
      });
      return { scanned, assessment: await assessPlan(opened, scanned, facts, map.journalCollection) };
    });
    const { scanned, assessment } = planned;
    plan = {
      ...scanned,
      warnings: [...scanned.warnings, ...assessment.warnings],
      blockers: [...scanned.blockers, ...assessment.blockers],
    };
    const view: PlanView = {
      plan,
      target: store.description,
      size: assessment.size,
      command,
      refusals: [],
    };
    output.report(renderPlan(view, 'execute'));
    if (isBlocked(plan)) throw blockedAbort(plan);
    if (nothingToDo(plan)) return await recordNoop(command, run, view, plan, [], output);
    interruption.stopIfInterrupted();

    let applied: Applied;
    try {
      applied = await commit(store, command, map, { run, plan }, output, context);
    } catch (error) {
      if (!(error instanceof NothingToDo)) throw error;
      // The plan made before the transaction had work; the one made inside has none: another run committed.
      const known = new Set(plan.prior.map((migration) => migration.id));
      const meanwhile = error.plan.prior.filter((migration) => !known.has(migration.id));
      return await recordNoop(command, run, { ...view, plan: error.plan }, error.plan, meanwhile, output);
    }
    return await afterCommit(store, applied, { command, map, run, view, output, context });
  } catch (error) {
    const failure = asMigrationError(error);
    log('failed: %O', error);
    if (
      failure.exitCode !== ExitCode.usage &&
      failure.exitCode !== ExitCode.completedUnrecorded &&
      !failure.context.unrecordable
    ) {
      const failedPlan = (failure.context.plan as Plan | undefined) ?? plan;
      lock ??= await lockHistory(command.historyFile);
      const record = failedRecord(run, failure, failedPlan);
      await appendHistory(command.historyFile, record);
      if (command.json) {
        output.json({
          mode: 'execute',
          status: record.status,
          error: record.error,
          record,
          plan:
            failedPlan &&
            planJson({
              plan: failedPlan,
              target: run.target,
              refusals: [],
            }),
        });
      }
    }
    throw failure;
  } finally {
    await lock?.release();
    await store?.close();
  }
}

/** The transaction; a commit whose answer was lost is settled, not guessed (commit.ts). */
function commit(
  store: Store,
  command: MigrateCommand,
  map: ReferenceMap,
  { run, plan }: { run: RunFacts; plan: Plan },
  output: Output,
  context: ActionContext,
): Promise<Applied> {
  output.progress('Applying in one transaction:');
  let committing = 0;
  const request = {
    ...command.request,
    options: command.options,
    map,
    run: { id: run.id, now: run.startedAt },
    ...(command.expectPlan ? { expectPlan: command.expectPlan } : {}),
  };
  return commitSettled(
    (onCommit) =>
      phase(output, '  applying', () =>
        applyMigration(store, request, {
          signal: context.interruption.signal,
          onPlanned: (planned, ms) =>
            output.progress(
              `  plan made again inside the transaction: ${planned.fingerprint} (${duration(ms)})`,
            ),
          onStepStart: (step) => output.progress(renderStepStart(step)),
          onStep: (result) => output.progress(renderProgress(result)),
          onRetry: (attempt) =>
            output.progress(`  transaction retried by MongoDB (attempt ${attempt}); re-reading`),
          onCommit: () => {
            committing = Date.now();
            output.progress('  committing...');
            onCommit();
          },
        }),
      ).then((applied) => {
        output.progress(`  committed (${duration(Date.now() - committing)})`);
        return applied;
      }),
    {
      store,
      journal: map.journalCollection,
      id: run.id,
      what: 'migration',
      check: checkAdvice(run.id, map, command),
      output,
      interruption: context.interruption,
      recordUnknown: (failure) => appendHistory(command.historyFile, failedRecord(run, failure, plan)),
    },
  );
}

function checkAdvice(id: string, map: ReferenceMap, command: MigrateCommand): string {
  return `To find out: ${commandLine(['verify', id], command)} (or in mongosh: db.${map.journalCollection}.findOne({ _id: "${id}" }): a document of type "migration" means it committed)`;
}

/**
 * Nothing left to move: no transaction commits, no journal entry, no mark on the destination; a `noop` record
 * says the run happened and which migrations had already moved its sources. Exit 0.
 */
async function recordNoop(
  command: MigrateCommand,
  run: RunFacts,
  view: PlanView,
  plan: Plan,
  meanwhile: PriorMigration[],
  output: Output,
): Promise<ExitCode> {
  const record = noopRecord(run, plan, meanwhile.length > 0);
  await appendHistory(command.historyFile, record);
  const message = `${nothingToDoText(plan, meanwhile)}. Record ${record.id} (noop) appended to ${command.historyFile}`;
  if (command.json) {
    output.json({ mode: 'execute', status: 'noop', message, record, plan: planJson(view) });
  } else {
    output.report(`${message}\n`);
  }
  return ExitCode.ok;
}

interface Committed {
  command: MigrateCommand;
  map: ReferenceMap;
  run: RunFacts;
  view: PlanView;
  output: Output;
  context: ActionContext;
}

/**
 * From here the migration is committed: nothing may say otherwise. A failure to recount or to record turns into
 * exit 4 with the record printed, never into "nothing was committed".
 */
async function afterCommit(store: Store, applied: Applied, committed: Committed): Promise<ExitCode> {
  try {
    return await keepCommitted(store, applied, committed);
  } catch (error) {
    if (error instanceof CompletedUnrecordedError) throw error;
    const id = committed.run.id;
    throw new CompletedUnrecordedError(
      `The migration ${id} COMPLETED, but what follows the commit failed (${errorMessage(error)}); run ${commandLine(['verify', id], committed.command)}, and keep this message as its record`,
      { cause: error },
    );
  }
}

async function keepCommitted(store: Store, applied: Applied, committed: Committed): Promise<ExitCode> {
  const { command, map, run, view, output, context } = committed;
  const record = completedRecord(run, applied);
  context.interruption.onForce(() => completedStop(record));
  // Read after the commit, at its cluster time (the store's reads wait for it), majority-committed.
  try {
    const stragglers = await phase(output, 'Counting what is left on the sources', () =>
      recountStragglers(store, applied.plan, map),
    );
    if (Object.keys(stragglers).length > 0) {
      record.stragglers = stragglers;
      output.error(renderStragglers(stragglers));
    }
  } catch (error) {
    output.error(
      `WARNING: the migration committed, but the documents left on the sources could not be recounted (${errorMessage(error)}); run ${commandLine(['verify', record.id], command)}`,
    );
  }
  try {
    const { destination } = applied.plan;
    const clashes = await usernameClashes(store, destination, arrivalsOf(applied.plan));
    if (clashes.length > 0) {
      record.usernameClashes = clashes.map((clash) => clashRecord(clash, clashAdvice(clash)));
      output.error(renderClashes(clashes, destination.username));
    }
  } catch (error) {
    output.error(
      `WARNING: the migration committed, but usernames under the destination could not be checked again (${errorMessage(error)}); run ${commandLine(['verify', record.id], command)}`,
    );
  }
  await recordCommitted(command.historyFile, record, 'migration', output);
  if (command.json) {
    output.json({
      mode: 'execute',
      status: 'completed',
      record,
      plan: planJson({ ...view, plan: applied.plan }),
    });
  } else {
    output.report(renderCompleted(record, command));
  }
  if (context.interruption.signal.aborted) {
    output.error(JSON.stringify(record, null, 2));
    throw new CompletedUnrecordedError(
      `Interrupted after the commit: the migration COMPLETED and its record ${record.id} was appended to ${command.historyFile} (also printed above)`,
    );
  }
  return ExitCode.ok;
}

function completedStop(record: HistoryRecord) {
  return {
    message: `the migration COMPLETED; its record could not be written in time, here it is:\n${JSON.stringify(record, null, 2)}`,
    exitCode: ExitCode.completedUnrecorded,
  };
}

function blockedAbort(plan: Plan): BlockedError {
  const conflicts = plan.blockers.some((b) => b.kind === 'conflicts');
  const head = conflicts
    ? `Migration aborted due to conflicts (${plan.conflicts.length})`
    : 'Migration aborted';
  return new BlockedError(`${head}; nothing was changed: ${plan.blockers.map((b) => b.message).join('; ')}`, {
    context: { plan },
  });
}
