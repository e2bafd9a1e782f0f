import createDebug from 'debug';
import { lockFileOf } from '../files/lock-file.js';
import { checkReportFile, type GuardedFile, writeReport } from '../files/report-file.js';
import { checkDatabase } from '../plan/database.js';
import { resolveCustomers } from '../plan/resolve.js';
import { isBlocked, scanMigration } from '../plan/scan.js';
import { loadReferenceMap, mappedCollections } from '../plan/schema.js';
import { assessPlan } from '../plan/server-checks.js';
import { renderMarkdown } from '../report/markdown.js';
import { newRunId } from '../report/record.js';
import { type PlanView, planJson, renderPlan } from '../report/report.js';
import { ExitCode } from '../shared/errors.js';
import type { Output } from '../shared/output.js';
import { describeTarget } from '../store/index.js';
import type { MigrateCommand } from './command.js';
import type { ActionContext } from './context.js';
import { executionChecks } from './preflight.js';
import { phase } from './progress.js';

const log = createDebug('agm:migrate-customer-data');

/**
 * Read-only by construction: the only store this action can obtain is a ReadOnlyStore, whose implementations
 * have no write method, and it writes no history record and takes no lock. It runs every check execute runs
 * before writing, so "would proceed" means execute would.
 */
export async function previewMigration(
  command: MigrateCommand,
  output: Output,
  context: ActionContext,
): Promise<ExitCode> {
  if (command.reportFile) await checkReportFile(command.reportFile, guardedFiles(command), command.force);
  const map = await loadReferenceMap(command.configFile);
  const { refusals, cautions } = await executionChecks(command);
  const store = await phase(output, `Reading ${describeTarget(command.target)}`, () =>
    context.openReadOnlyStore(command.target, {
      pointInTime: true,
      requiredCollections: mappedCollections(map),
    }),
  );
  try {
    log('preview on %s', store.description);
    await checkDatabase(store);
    const customers = await resolveCustomers(store, command.request);
    const { scanned, assessment } = await phase(output, 'Planning', async () => {
      const facts = await store.inspect([...mappedCollections(map), map.journalCollection]);
      const scanned = await scanMigration(store, customers, command.options, map, {
        id: newRunId(),
        now: new Date(),
      });
      return { scanned, assessment: await assessPlan(store, scanned, facts, map.journalCollection) };
    });
    const plan = {
      ...scanned,
      warnings: [...scanned.warnings, ...assessment.warnings],
      blockers: [...scanned.blockers, ...assessment.blockers],
    };
    const view: PlanView = {
      plan,
      target: store.description,
      size: assessment.size,
      command,
      refusals,
      cautions,
    };
    log('plan %s: %d steps, %d blockers', plan.fingerprint, plan.steps.length, plan.blockers.length);
    if (command.reportFile) await writeReport(command.reportFile, renderMarkdown(view, command));
    const exitCode = refusals[0]?.exitCode ?? (isBlocked(plan) ? ExitCode.blocked : ExitCode.ok);
    if (command.json) {
      output.json({
        mode: 'preview',
        target: store.description,
        wouldProceed: exitCode === ExitCode.ok && cautions.length === 0,
        plan: planJson(view),
      });
    } else {
      output.report(renderPlan(view, 'preview'));
    }
    if (command.reportFile) output.progress(`Markdown report written to ${command.reportFile}`);
    return exitCode as ExitCode;
  } finally {
    await store.close();
  }
}

/** What a report must never replace: the files this run reads, and those an execution would write. */
function guardedFiles(command: MigrateCommand): GuardedFile[] {
  const files: GuardedFile[] = [
    { path: command.historyFile, what: 'the history file' },
    { path: lockFileOf(command.historyFile), what: "the history file's lock" },
  ];
  if (command.target.kind === 'snapshot') {
    files.push(
      { path: command.target.file, what: 'the snapshot file' },
      { path: lockFileOf(command.target.file), what: "the snapshot's lock" },
    );
  }
  if (command.target.kind === 'dump') {
    files.push({ path: lockFileOf(command.target.dir), what: "the dump's lock" });
  }
  if (command.configFile) files.push({ path: command.configFile, what: 'the --config file' });
  return files;
}
