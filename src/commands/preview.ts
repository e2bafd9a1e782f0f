import createDebug from 'debug';
import { replaceFile } from '../files/atomic-file.js';
import { resolveCustomers } from '../plan/resolve.js';
import { isBlocked, scanMigration } from '../plan/scan.js';
import { loadReferenceMap, mappedCollections } from '../plan/schema.js';
import { assessPlan } from '../plan/server-checks.js';
import { renderMarkdown } from '../report/markdown.js';
import { newRunId } from '../report/record.js';
import { type PlanView, planJson, renderPlan } from '../report/report.js';
import { ExitCode } from '../shared/errors.js';
import type { Output } from '../shared/output.js';
import type { MigrateCommand } from './command.js';
import type { ActionContext } from './context.js';
import { executionRefusals } from './preflight.js';

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
  const map = await loadReferenceMap(command.configFile);
  const refusals = await executionRefusals(command);
  const store = await context.openReadOnlyStore(command.target, {
    pointInTime: true,
    requiredCollections: mappedCollections(map),
  });
  try {
    log('preview on %s', store.description);
    const customers = await resolveCustomers(store, command.request);
    const facts = await store.inspect([...mappedCollections(map), map.journalCollection]);
    const scanned = await scanMigration(store, customers, command.options, map, {
      id: newRunId(),
      now: new Date(),
    });
    const assessment = await assessPlan(store, scanned, facts, map.journalCollection);
    const plan = {
      ...scanned,
      warnings: [...scanned.warnings, ...assessment.warnings],
      blockers: [...scanned.blockers, ...assessment.blockers],
    };
    const view: PlanView = { plan, target: store.description, size: assessment.size, command, refusals };
    log('plan %s: %d steps, %d blockers', plan.fingerprint, plan.steps.length, plan.blockers.length);
    if (command.reportFile) await replaceFile(command.reportFile, renderMarkdown(view, command));
    const exitCode = refusals[0]?.exitCode ?? (isBlocked(plan) ? ExitCode.blocked : ExitCode.ok);
    if (command.json) {
      output.json({
        mode: 'preview',
        target: store.description,
        wouldProceed: exitCode === ExitCode.ok,
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
