import { describeStep, type StepResult } from './apply.js';
import type { Conflict, ConflictAccount } from './conflicts.js';
import { plain } from './plain.js';
import type { HistoryRecord } from './record.js';
import type { CustomerSummary, Plan, Step } from './scan.js';

const WAYS_OUT =
  'Ways out: rename the conflicting accounts first (guide Strategy 1), or re-run with --merge-conflicts (Strategy 2) after reviewing what it would do.';

/** The plan as a person reads it: what would move, what clashes, what execution would do. */
export function renderPlan(plan: Plan, target: string, mode: 'preview' | 'execute'): string {
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
  lines.push(...conflictLines(plan), '');
  lines.push('Actions on execute (one transaction):');
  plan.steps.forEach((step, index) => {
    lines.push(`  ${index + 1}. ${describeStep(step)}: ${step.expected} document(s)`);
  });
  lines.push('');
  lines.push(
    `Estimated transaction size: ${plan.estimate.documents} document(s) modified (warning above ${plan.estimate.threshold})`,
  );
  for (const warning of plan.warnings) lines.push(`WARNING: ${warning}`);
  lines.push(
    `Plan fingerprint: ${plan.fingerprint} (execute with --expect-plan ${plan.fingerprint} to run exactly this plan)`,
  );
  if (mode === 'preview') {
    lines.push('');
    lines.push(
      plan.blocked
        ? `Execution would be BLOCKED by ${plan.conflicts.length} conflict(s). ${WAYS_OUT}`
        : 'Execution would proceed.',
    );
    lines.push('Preview only: no changes were made.');
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
  return `  ${customer.username}  ${customer._id.toHexString()}  ${detail}${customer.active ? '' : '  [inactive]'}`;
}

function referenceTable(plan: Plan): string[] {
  const rows: [string, string, string, string][] = [['collection', 'field', 'documents', '']];
  for (const step of plan.steps.filter((s) => s.action === 'repoint-customer-refs')) {
    rows.push([step.collection, step.field ?? '', String(step.expected), '']);
  }
  for (const ref of plan.skipped) {
    rows.push([
      ref.collection,
      ref.field,
      String(ref.documents),
      'skipped (--skip-invoices): stays with the source',
    ]);
  }
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  return [
    'Documents to re-point from the sources to the destination (soft-deleted documents included):',
    ...rows.map((row) =>
      `  ${row[0].padEnd(widths[0] as number)}  ${row[1].padEnd(widths[1] as number)}  ${row[2].padStart(widths[2] as number)}  ${row[3]}`.trimEnd(),
    ),
  ];
}

function conflictLines(plan: Plan): string[] {
  if (plan.conflicts.length === 0) return ['Username conflicts: none'];
  return [
    `Username conflicts (${plan.conflicts.length}), compared trimmed and case-insensitively:`,
    ...plan.conflicts.flatMap((conflict, index) => [
      `  ${index + 1}. "${conflict.username}": incoming ${accountText(conflict.incoming)} vs existing ${accountText(conflict.existing)}`,
      `     with --merge-conflicts: ${resolutionText(conflict)}`,
    ]),
  ];
}

function accountText(account: ConflictAccount): string {
  const role = account.convertedCustomer ? 'source customer converted to admin' : `kind ${account.kind}`;
  return `${account.username} ${account._id.toHexString()} (${role}, of ${account.owner.username})`;
}

function resolutionText(conflict: Conflict): string {
  const { resolution } = conflict;
  if (resolution.action === 'block') return `BLOCKS: ${resolution.reason}`;
  return `merge: ${conflict.incoming._id.toHexString()} is marked deleted and its references move to ${resolution.survivor.toHexString()} (${conflict.existing.username})`;
}

export function renderConflictAbort(plan: Plan): string {
  return [
    `Migration aborted due to conflicts: ${plan.conflicts.length} username conflict(s), nothing was changed.`,
    ...conflictLines(plan).slice(1),
    WAYS_OUT,
  ].join('\n');
}

export function renderProgress(result: StepResult): string {
  return `  ${describeStep(result.step)}: matched ${result.matched}, modified ${result.modified} (${result.durationMs} ms)`;
}

export function renderCompleted(record: HistoryRecord, historyFile: string): string {
  return [
    `Migration completed in ${record.durationMs} ms: ${record.stats.documentsModified} document(s) modified, ${record.stats.mergedAccounts} account(s) merged.`,
    `History: record ${record.id} appended to ${historyFile}`,
    '',
  ].join('\n');
}

export function planJson(plan: Plan): unknown {
  return plain({
    ...plan,
    steps: plan.steps.map((step: Step) => ({ ...step, description: describeStep(step) })),
  });
}
