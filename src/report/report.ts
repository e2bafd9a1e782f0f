import type { Conflict, ConflictAccount } from '../plan/conflicts.js';
import type { PriorMigration } from '../plan/prior.js';
import { describeKind, quoteName, showName } from '../plan/resolve.js';
import {
  type Counts,
  type CustomerSummary,
  type FieldScan,
  isBlocked,
  nothingToDo,
  type Plan,
  type Step,
} from '../plan/scan.js';
import { plain } from '../shared/plain.js';
import { describeStep, type StepResult } from '../transaction/apply.js';
import type { HistoryRecord } from './record.js';

/** What stands between a preview and an execution, beside the plan's own blockers. */
export interface Refusal {
  message: string;
  exitCode: number;
}

export interface PlanView {
  plan: Plan;
  target: string;
  /** The transaction size above which the preview warns, and where it comes from. */
  threshold: { documents: number; basis: string };
  /** Checks execute runs before writing that would refuse it (history file, locks). */
  refusals: Refusal[];
}

/** The plan as a person reads it: what would move, what clashes, what execution would do. */
export function renderPlan(view: PlanView, mode: 'preview' | 'execute'): string {
  const { plan, target } = view;
  const blocked = isBlocked(plan) || view.refusals.length > 0;
  const lines: string[] = [];
  lines.push(
    mode === 'preview'
      ? 'Customer data migration: PREVIEW (read-only, nothing will be written)'
      : 'Customer data migration: EXECUTE',
  );
  lines.push(`Target: ${target}`, '');
  lines.push('Sources:', ...plan.sources.map(customerLine));
  lines.push('Destination:', customerLine(plan.destination), '');
  lines.push(...referenceTable(plan), '');
  lines.push(...conflictLines(plan, mode), '');
  const idle = !blocked && nothingToDo(plan);
  if (idle) lines.push(`${nothingToDoText(plan)}.`, '');
  if (!blocked && !idle) {
    lines.push('Actions on execute (one transaction, journaled for verify and rollback):');
    plan.steps.forEach((step, index) => {
      lines.push(`  ${index + 1}. ${describeStep(step)}: ${step.expected} document(s)`);
    });
    lines.push('');
    lines.push(...expectationLines(plan), '');
  }
  lines.push(
    `Estimated transaction size: ${plan.estimate.documents} document(s) modified (warning above ${view.threshold.documents}: ${view.threshold.basis})`,
  );
  for (const warning of plan.warnings) lines.push(`WARNING: ${warning}`);
  if (mode === 'preview') {
    lines.push('');
    if (blocked) {
      lines.push('Execution would be BLOCKED:');
      for (const blocker of plan.blockers) lines.push(`  - ${blocker.message}`);
      for (const refusal of view.refusals) lines.push(`  - ${refusal.message}`);
      if (plan.blockers.some((b) => b.kind === 'conflicts') && !plan.options.mergeConflicts) {
        lines.push(
          'Ways out: rename the conflicting accounts first (guide Strategy 1), or re-run with --merge-conflicts (Strategy 2) after reviewing what it would do.',
        );
      }
      lines.push(`Plan fingerprint: ${plan.fingerprint}`);
    } else {
      lines.push(
        `Plan fingerprint: ${plan.fingerprint} (execute with --expect-plan ${plan.fingerprint} to run exactly this plan)`,
      );
      lines.push(
        idle
          ? 'Execution would change nothing: it would only append a noop record to the history.'
          : 'Execution would proceed.',
      );
    }
    lines.push('Preview only: no changes were made.');
  } else {
    lines.push(`Plan fingerprint: ${plan.fingerprint}`);
  }
  return `${lines.join('\n')}\n`;
}

function customerLine(customer: CustomerSummary): string {
  const { total, softDeleted, byKind } = customer.subAccounts;
  const kinds = Object.entries(byKind)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, count]) => `kind ${kind}: ${count}`)
    .join(', ');
  const detail =
    total === 0 ? 'no sub-accounts' : `${total} sub-account(s) (${kinds}; ${softDeleted} soft-deleted)`;
  const flags = `${customer.active ? '' : '  [inactive]'}${customer.followUp ? '  [follow-up: already migrated here]' : ''}`;
  return `  ${showName(customer.username)}  ${customer._id.toHexString()}  ${detail}${flags}`;
}

function moved(field: FieldScan, spelling: 'object' | 'string'): number {
  return field.moves
    .filter((move) => (typeof move.from === 'string') === (spelling === 'string'))
    .reduce((sum, move) => sum + move.documents, 0);
}

function referenceTable(plan: Plan): string[] {
  const rows: string[][] = [['collection', 'field', 'documents', '']];
  for (const field of plan.fields.filter((f) => f.kind === 'customer')) {
    const note = field.skipped ? 'skipped (--skip-invoices): stays with the source' : '';
    rows.push([field.collection, field.field, String(moved(field, 'object')), note]);
    const strings = moved(field, 'string');
    if (strings > 0)
      rows.push([
        '',
        '',
        String(strings),
        `stored as hex strings: ${field.skipped ? 'stay' : 'moved as strings'}`,
      ]);
    if (field.arrays.documents > 0) {
      rows.push([
        '',
        '',
        String(field.arrays.documents),
        `inside arrays: cannot be moved (e.g. ${field.arrays.sample.slice(0, 3).join(', ')})`,
      ]);
    }
  }
  const lines = [
    'Documents to re-point from the sources to the destination (soft-deleted documents included):',
    ...columns(rows),
  ];
  const accounts = plan.fields.filter((f) => f.kind === 'account');
  if (accounts.length > 0) {
    lines.push(
      'Account references moved from merged accounts to their survivors:',
      ...columns(
        accounts.map((f) => [
          `${f.collection}.${f.field}`,
          String(f.moves.reduce((sum, move) => sum + move.documents, 0)),
          f.skipped ? 'skipped (--skip-invoices)' : '',
        ]),
      ),
    );
  }
  return lines;
}

/** Left-aligned text columns, the second-to-last (a count) right-aligned. */
function columns(rows: string[][]): string[] {
  const widths = (rows[0] ?? []).map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  const countColumn = widths.length - 2;
  return rows.map((row) =>
    `  ${row
      .map((cell, column) =>
        column === countColumn ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
      )
      .join('  ')}`.trimEnd(),
  );
}

function countsText(counts: Counts): string {
  return `${counts.live + counts.softDeleted} (${counts.live} live, ${counts.softDeleted} soft-deleted)`;
}

/** The guide's verification, answered in advance: what `verify` (and the guide's mongosh queries) will find. */
function expectationLines(plan: Plan): string[] {
  const { customerRefs, subAccounts, movingAccounts } = plan.expectations;
  const lines = [
    `After the migration, under ${showName(plan.destination.username)} (what verify will check):`,
  ];
  for (const [field, counts] of Object.entries(customerRefs)) lines.push(`  ${field}: ${countsText(counts)}`);
  lines.push(`  sub-accounts of kinds 3, 5, 9 (users.parent): ${subAccounts}`);
  if (movingAccounts.length > 0) {
    lines.push(`  accounts moving under it (${movingAccounts.length}):`);
    for (const account of movingAccounts) {
      lines.push(
        `    ${showName(account.username)} (${describeKind(account.kind)}, from ${showName(account.from)})`,
      );
    }
  }
  return lines;
}

export function conflictLines(plan: Plan, mode: 'preview' | 'execute'): string[] {
  if (plan.conflicts.length === 0) return ['Username conflicts: none'];
  const merge = plan.options.mergeConflicts;
  return [
    `Username conflicts (${plan.conflicts.length}), compared trimmed and case-insensitively:`,
    ...plan.conflicts.flatMap((conflict, index) => [
      `  ${index + 1}. ${quoteName(conflict.username)}: incoming ${accountText(conflict.incoming)} vs existing ${accountText(conflict.existing)}`,
      `     ${merge ? (mode === 'preview' ? 'will be resolved' : 'resolved') : 'with --merge-conflicts'}: ${resolutionText(conflict)}`,
    ]),
  ];
}

function accountText(account: ConflictAccount): string {
  const role = account.convertedCustomer ? 'source customer converted to admin' : `kind ${account.kind}`;
  return `${showName(account.username)} ${account._id.toHexString()} (${role}, of ${showName(account.owner.username)})`;
}

function resolutionText(conflict: Conflict): string {
  const { resolution } = conflict;
  if (resolution.action === 'block') return `BLOCKS: ${resolution.reason}`;
  return `merge: ${conflict.incoming._id.toHexString()} is marked deleted and its references move to ${resolution.survivor.toHexString()} (${showName(conflict.existing.username)})`;
}

export function renderProgress(result: StepResult): string {
  return `  ${describeStep(result.step)}: matched ${result.matched}, modified ${result.modified} (${result.durationMs} ms)`;
}

export function renderCompleted(record: HistoryRecord, historyFile: string): string {
  const followUp = record.followUpOf?.length ? ` (a follow-up of ${record.followUpOf.join(', ')})` : '';
  const lines = [
    `${followUp ? 'Follow-up migration' : 'Migration'} completed in ${record.durationMs} ms${followUp}: ${record.stats.documentsModified} document(s) modified, ${record.stats.mergedAccounts} account(s) merged.`,
    `Journal: ${record.journal?.documents ?? 0} re-pointed document id(s) in ${record.journal?.chunks ?? 0} chunk(s) in ${record.journal?.collection}, entry ${record.id}`,
    `History: record ${record.id} appended to ${historyFile}`,
    `Check it: node scripts/migrateCustomerData.js verify ${record.id}   Undo it: node scripts/migrateCustomerData.js rollback ${record.id} --preview`,
  ];
  return `${lines.join('\n')}\n`;
}

export function renderStragglers(stragglers: Record<string, number>): string {
  const list = Object.entries(stragglers)
    .map(([field, count]) => `${field}: ${count}`)
    .join(', ');
  return `WARNING: after the commit, documents still reference a source or a merged account (${list}): they were written while the migration ran. Run the same command again: a follow-up run moves only what was left behind.`;
}

/** What to do about a username two live accounts share under the destination. */
export function clashAdvice(conflict: Conflict): string {
  if (conflict.resolution.action === 'block') return `rename one of them (${conflict.resolution.reason})`;
  return `rename one of them, or run the same command again with --merge-conflicts: that follow-up run merges ${conflict.incoming._id.toHexString()} into ${conflict.existing._id.toHexString()} (its references move there)`;
}

/** One line per clash, naming both accounts. */
export function clashText(conflict: Conflict): string {
  return `${quoteName(conflict.username)}: ${accountText(conflict.incoming)}, moved in, and ${accountText(conflict.existing)}, already there`;
}

export function renderClashes(clashes: Conflict[], destination: string): string {
  return [
    `WARNING: after the commit, ${clashes.length} account(s) moved under ${showName(destination)} share a username with a live account already there (created while the migration ran; usernames must be unique under a customer):`,
    ...clashes.flatMap((conflict) => [`  ${clashText(conflict)}`, `    ${clashAdvice(conflict)}`]),
  ].join('\n');
}

/** The earlier migrations that already moved these sources, for the operator: ids and times. */
export function priorText(prior: PriorMigration[]): string {
  const [first, ...later] = prior;
  if (!first) return '';
  const then = later.map((m) => `, then follow-up ${m.id} at ${m.startedAt.toISOString()}`).join('');
  return `migration ${first.id} already moved these sources at ${first.startedAt.toISOString()}${then}`;
}

/**
 * A run with nothing left to move. `meanwhile`: the migrations that committed while this run waited (its plan,
 * made before its transaction, still had work).
 */
export function nothingToDoText(plan: Plan, meanwhile: PriorMigration[] = []): string {
  if (meanwhile.length > 0) {
    const names = meanwhile.map((m) => `${m.id} (at ${m.startedAt.toISOString()})`).join(', ');
    return `Nothing to do: migration ${names} committed while this run waited and already moved these sources; nothing was left behind, nothing was written`;
  }
  return `Nothing to do: ${priorText(plan.prior)}; nothing was left behind, nothing was written`;
}

export function planJson(view: PlanView): unknown {
  return plain({
    ...view.plan,
    blocked: isBlocked(view.plan) || view.refusals.length > 0,
    refusals: view.refusals,
    threshold: view.threshold,
    steps: view.plan.steps.map((step: Step) => ({ ...step, description: describeStep(step) })),
  });
}
