import createDebug from 'debug';
import {
  appendHistory,
  checkHistoryFile,
  type HistoryLock,
  lockHistory,
  readHistory,
} from '../files/history.js';
import { checkDatabase } from '../plan/database.js';
import { loadReferenceMap } from '../plan/schema.js';
import { commandLine, passwordNote } from '../report/command-line.js';
import { emptyStats, finish, type HistoryRecord, markFailed, newRunId } from '../report/record.js';
import {
  asMigrationError,
  BlockedError,
  CompletedUnrecordedError,
  ExitCode,
  errorMessage,
} from '../shared/errors.js';
import type { Output } from '../shared/output.js';
import { plain } from '../shared/plain.js';
import { describeTarget } from '../store/index.js';
import type { Store } from '../store/types.js';
import { commitSettled } from '../transaction/commit.js';
import { type Restored, restoreMigration } from '../transaction/restore.js';
import { planRollback, type RollbackPlan } from '../transaction/rollback-plan.js';
import type { RollbackCommand } from './command.js';
import type { ActionContext } from './context.js';
import { executionChecks } from './preflight.js';
import { phase } from './progress.js';
import { recordCommitted } from './record-committed.js';

const log = createDebug('agm:migrate-customer-data');

/**
 * `rollback <id>`: reverse a completed migration from its journal, in one transaction, or (with --preview)
 * show what would be restored and the drift check, writing nothing. Drift or an earlier rollback refuses it
 * (exit 3) with nothing written and no record; a run-time failure records "failed"; success records
 * "rolled_back" referring to the migration.
 */
export async function rollbackMigration(
  command: RollbackCommand,
  output: Output,
  context: ActionContext,
): Promise<ExitCode> {
  const map = await loadReferenceMap(command.configFile);
  const journal = map.journalCollection;
  if (command.preview) return previewRollback(command, output, context, journal);

  await checkHistoryFile(command.historyFile);
  const startedAt = new Date();
  const record = rollbackRecord(newRunId(), command.migrationId, describeTarget(command.target), startedAt);
  await describeFromHistory(record, command);
  context.interruption.onForce(() => ({
    message: 'stopped before the commit: nothing was rolled back',
    exitCode: ExitCode.failed,
  }));
  let store: Store | undefined;
  let lock: HistoryLock | undefined;
  try {
    const opened = await phase(output, `Reading ${record.target}`, () =>
      context.openStore(command.target, { signal: context.interruption.signal }),
    );
    store = opened;
    await checkDatabase(store);
    const plan = await phase(output, 'Checking for drift', () =>
      planRollback(opened, journal, command.migrationId, opened.description),
    );
    describeSubject(record, plan);
    lock = await lockHistory(command.historyFile);
    await store.assertTransactional();
    output.report(renderRollback(plan, store.description, 'execute'));
    if (plan.blockers.length > 0) throw refusal(plan);
    context.interruption.stopIfInterrupted();
    const restored = await phase(output, 'Restoring in one transaction', () =>
      commitRollback(opened, command, journal, record, startedAt, output, context),
    );
    // From here the rollback is committed: nothing may say otherwise, a forced stop included.
    try {
      Object.assign(record, { status: 'rolled_back' }, statsOf(restored));
      finish(record, startedAt);
      context.interruption.onForce(() => ({
        message: `the rollback COMPLETED (migration ${command.migrationId} reversed); its record could not be written in time, here it is:\n${JSON.stringify(record, null, 2)}`,
        exitCode: ExitCode.completedUnrecorded,
      }));
      await recordCommitted(command.historyFile, record, 'rollback', output);
    } catch (error) {
      if (error instanceof CompletedUnrecordedError) throw error;
      throw new CompletedUnrecordedError(
        `The rollback ${record.id} COMPLETED, but recording it failed (${errorMessage(error)}); run ${commandLine(['verify', command.migrationId], command)}`,
        { cause: error },
      );
    }
    if (command.json) output.json({ mode: 'rollback', status: 'rolled_back', record });
    else {
      const note = passwordNote(command);
      output.report(
        `Rollback completed: migration ${command.migrationId} reversed, ${restored.documentsModified} document(s) restored.\nHistory: record ${record.id} (rolled_back) appended to ${command.historyFile}\nCheck it: ${commandLine(['verify', command.migrationId], command)}\n${note ? `(${note})\n` : ''}`,
      );
    }
    return ExitCode.ok;
  } catch (error) {
    const failure = asMigrationError(error);
    log('rollback failed: %O', error);
    // Refusals (input, drift, an earlier rollback) write nothing at all; run-time failures are recorded.
    const recorded =
      [ExitCode.failed, ExitCode.unknown].includes(failure.exitCode as 1 | 5) &&
      !failure.context.unrecordable;
    if (recorded) {
      lock ??= await lockHistory(command.historyFile);
      markFailed(record, failure);
      await appendHistory(command.historyFile, finish(record, startedAt));
      if (command.json) output.json({ mode: 'rollback', status: record.status, error: record.error, record });
    }
    throw failure;
  } finally {
    await lock?.release();
    await store?.close();
  }
}

async function previewRollback(
  command: RollbackCommand,
  output: Output,
  context: ActionContext,
  journal: string,
): Promise<ExitCode> {
  const { refusals, cautions } = await executionChecks(command);
  const store = await phase(output, `Reading ${describeTarget(command.target)}`, () =>
    context.openReadOnlyStore(command.target, { pointInTime: true }),
  );
  try {
    await checkDatabase(store);
    const plan = await phase(output, 'Checking for drift', () =>
      planRollback(store, journal, command.migrationId, store.description),
    );
    const blockers = [...plan.blockers, ...refusals.map((refusal) => refusal.message)];
    const exitCode = refusals[0]?.exitCode ?? (plan.blockers.length > 0 ? ExitCode.blocked : ExitCode.ok);
    if (command.json) {
      output.json({
        mode: 'rollback-preview',
        target: store.description,
        wouldProceed: exitCode === ExitCode.ok && cautions.length === 0,
        cautions,
        plan: plain({
          migration: plan.head._id,
          status: plan.head.status,
          sources: plan.head.sources,
          destination: plan.head.destination,
          restores: plan.restores,
          // Before-images hold credentials: the JSON names the accounts, the journal keeps the documents.
          accounts: plan.accounts.map(({ _id, role }) => ({ _id, role })),
          drift: plan.drift,
          blockers,
        }),
      });
    } else {
      output.report(renderRollback({ ...plan, blockers }, store.description, 'preview', cautions));
    }
    return exitCode as ExitCode;
  } finally {
    await store.close();
  }
}

/** The rollback's transaction; a commit whose answer was lost is settled by its own journal document. */
function commitRollback(
  store: Store,
  command: RollbackCommand,
  journal: string,
  record: HistoryRecord,
  startedAt: Date,
  output: Output,
  context: ActionContext,
): Promise<Restored> {
  const request = {
    journal,
    migrationId: command.migrationId,
    rollbackId: record.id,
    where: store.description,
    now: startedAt,
  };
  return commitSettled(
    (onCommit) => restoreMigration(store, request, { signal: context.interruption.signal, onCommit }),
    {
      store,
      journal,
      id: record.id,
      what: 'rollback',
      check: rollbackCheck(record.id, command, journal),
      output,
      interruption: context.interruption,
      recordUnknown: async (failure) => {
        markFailed(record, failure);
        await appendHistory(command.historyFile, finish(record, startedAt));
      },
    },
  );
}

function rollbackCheck(rollbackId: string, command: RollbackCommand, journal: string): string {
  return `To find out: ${commandLine(['verify', command.migrationId], command)} (or in mongosh: db.${journal}.findOne({ _id: "${rollbackId}" }): a document of type "rollback" means the rollback committed)`;
}

function refusal(plan: RollbackPlan): BlockedError {
  return new BlockedError(`Rollback refused; nothing was written: ${plan.blockers.join('; ')}`);
}

function rollbackRecord(id: string, migrationId: string, target: string, startedAt: Date): HistoryRecord {
  return {
    id,
    status: 'failed',
    rollsBack: migrationId,
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    durationMs: 0,
    target,
    request: { rollback: migrationId },
    sources: [],
    destination: null,
    options: null,
    planFingerprint: null,
    stats: emptyStats(),
    conflicts: [],
    mergedAccounts: [],
    convertedCustomers: [],
  };
}

/**
 * Until the journal is read (it names them for sure), the customers are those of the migration's own record:
 * a rollback that fails before reaching the journal (an unreachable server) still says what it was about.
 */
async function describeFromHistory(record: HistoryRecord, command: RollbackCommand): Promise<void> {
  const records = (await readHistory(command.historyFile)) as Partial<HistoryRecord>[];
  const migration = records.find((entry) => entry.id === command.migrationId && !entry.rollsBack);
  if (!migration?.destination) return;
  record.sources = (migration.sources ?? []).map(({ id, username }) => ({ id, username }));
  record.destination = migration.destination;
  record.options = migration.options ?? null;
}

function describeSubject(record: HistoryRecord, plan: RollbackPlan): void {
  record.sources = plan.head.sources.map((s) => ({ id: s._id.toHexString(), username: s.username }));
  record.destination = {
    id: plan.head.destination._id.toHexString(),
    username: plan.head.destination.username,
  };
  record.options = plan.head.options;
}

function statsOf(restored: Restored): Pick<HistoryRecord, 'stats'> {
  const stats = emptyStats();
  stats.documentsModified = restored.documentsModified;
  stats.customerRefs = restored.refs;
  stats.sourceCustomers = { matched: restored.accounts, modified: restored.accounts };
  return { stats };
}

function renderRollback(
  plan: RollbackPlan,
  target: string,
  mode: 'preview' | 'execute',
  cautions: string[] = [],
): string {
  const { head } = plan;
  const lines = [
    mode === 'preview' ? 'Rollback: PREVIEW (read-only, nothing will be written)' : 'Rollback: EXECUTE',
    `Target: ${target}`,
    `Migration ${head._id} of ${head.startedAt.toISOString()}: ${head.sources.map((s) => s.username).join(', ')} -> ${head.destination.username} (status ${head.status})`,
    '',
    'References to restore:',
    ...plan.restores.map(
      (r) =>
        `  ${r.collection}.${r.field}: ${r.documents} document(s) back to ${typeof r.from === 'string' ? `"${r.from}"` : r.from.toHexString()}`,
    ),
    `Account documents restored to their before-images: ${plan.accounts.length} (${plan.accounts.map((a) => `${a.role} ${String(a.before.username)} ${a._id.toHexString()}`).join(', ') || 'none'})`,
    `Destination ${head.destination.username}: migration ${head._id} taken off migrationsReceived`,
    '',
    plan.drift.total === 0
      ? 'Drift check: none; every journaled document still holds what the migration wrote'
      : `Drift check: ${plan.drift.total} document(s) changed since the migration:`,
    ...plan.drift.items.map((item) => `  ${item.collection} ${item.id}: ${item.detail}`),
    ...(plan.drift.total > plan.drift.items.length
      ? [`  ... and ${plan.drift.total - plan.drift.items.length} more`]
      : []),
  ];
  if (mode === 'preview') {
    lines.push(
      '',
      ...(plan.blockers.length === 0 && cautions.length > 0
        ? ['Before rolling back:', ...cautions.map((caution) => `  - ${caution}`)]
        : []),
      plan.blockers.length > 0
        ? `Rollback would be REFUSED: ${plan.blockers.join('; ')}`
        : cautions.length > 0
          ? 'Rollback would proceed once that is done.'
          : 'Rollback would proceed.',
      'Preview only: no changes were made.',
    );
  }
  return `${lines.join('\n')}\n`;
}
