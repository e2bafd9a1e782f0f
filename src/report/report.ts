import type { ObjectId } from 'mongodb';
import type { Conflict, ConflictAccount } from '../plan/conflicts.js';
import type { PriorMigration } from '../plan/prior.js';
import { type CustomerRequest, describeKind, quoteName, showName } from '../plan/resolve.js';
import {
  type Counts,
  type CustomerSummary,
  type FieldScan,
  isBlocked,
  type MigrationOptions,
  nothingToDo,
  type Plan,
  type Step,
} from '../plan/scan.js';
import { mib, percent, type SizeAssessment } from '../plan/transaction-size.js';
import { plain } from '../shared/plain.js';
import type { StoreTarget } from '../store/types.js';
import { describeStep, type StepResult } from '../transaction/apply.js';
import {
  type CommandPlace,
  commandLine,
  type OperatorCommand,
  operatorCommand,
  passwordNote,
  shellWord,
} from './command-line.js';
import type { HistoryRecord } from './record.js';

/** What stands between a preview and an execution, beside the plan's own blockers. */
export interface Refusal {
  message: string;
  exitCode: number;
}

/** What a printed command needs of the one that was run: the same target, history file and reference map. */
export interface CommandShape {
  request: CustomerRequest;
  options: MigrationOptions;
  target: StoreTarget;
  configFile?: string;
  historyFile: string;
}

export interface PlanView {
  plan: Plan;
  target: string;
  /** The transaction's cost against the server's limits, and the phases when it exceeds one. */
  size?: SizeAssessment;
  /** The command that was run, for the commands printed next (the phases). */
  command?: CommandShape;
  /** Checks execute runs before writing that would refuse it (history file, locks). */
  refusals: Refusal[];
  /** What execute would refuse about this copy of the data only (a read-only snapshot): to do before it. */
  cautions?: string[];
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
  lines.push(...sizeLines(view));
  for (const warning of plan.warnings) lines.push(`WARNING: ${warning}`);
  lines.push(...phaseLines(view));
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
      const cautions = view.cautions ?? [];
      if (cautions.length > 0) {
        lines.push('Before executing:', ...cautions.map((caution) => `  - ${caution}`));
      }
      lines.push(
        `Plan fingerprint: ${plan.fingerprint} (execute with --expect-plan ${plan.fingerprint} to run exactly this plan)`,
      );
      lines.push(
        idle
          ? 'Execution would change nothing: it would only append a noop record to the history.'
          : cautions.length > 0
            ? 'Execution would proceed once that is done.'
            : 'Execution would proceed.',
      );
    }
    if (view.command?.target.kind === 'dump') {
      lines.push(
        "On a dump, the fingerprint is the one a preview of the same data on the server gives: the same fingerprint in production's preview means this backup is current for this migration.",
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
        account.converted
          ? `    ${showName(account.username)} (the source customer itself, converted to ${describeKind(account.kind)})`
          : `    ${showName(account.username)} (${describeKind(account.kind)}, from ${showName(account.from)})`,
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

/** A step's first line: what it is about to do. */
export function renderStepStart(step: Step): string {
  const journal = step.moves ? ', journaling their ids first' : '';
  return `  ${describeStep(step)}: ${step.expected} document(s)${journal}...`;
}

/** A step's last line: what it did, and how long each part took. */
export function renderProgress(result: StepResult): string {
  const { journal } = result;
  const parts = journal
    ? `journal ${journal.documents} id(s) in ${journal.chunks} chunk(s): ${duration(journal.durationMs)}, update: ${duration(result.durationMs)}`
    : duration(result.durationMs);
  return `  ${describeStep(result.step)}: matched ${result.matched}, modified ${result.modified} (${parts})`;
}

/** A duration as a person reads it: milliseconds below ten seconds, seconds above. */
export function duration(ms: number): string {
  return ms < 10_000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function renderCompleted(record: HistoryRecord, place: CommandPlace): string {
  const note = passwordNote(place);
  const followUp = record.followUpOf?.length ? ` (a follow-up of ${record.followUpOf.join(', ')})` : '';
  const lines = [
    `${followUp ? 'Follow-up migration' : 'Migration'} completed in ${record.durationMs} ms${followUp}: ${record.stats.documentsModified} document(s) modified, ${record.stats.mergedAccounts} account(s) merged.`,
    `Journal: ${record.journal?.documents ?? 0} re-pointed document id(s) in ${record.journal?.chunks ?? 0} chunk(s) in ${record.journal?.collection}, entry ${record.id}`,
    `History: record ${record.id} appended to ${place.historyFile}`,
    `Check it: ${commandLine(['verify', record.id], place)}`,
    `Undo it:  ${commandLine(['rollback', record.id, '--preview'], place)}`,
    ...(note ? [`(${note})`] : []),
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
  const { size, command } = view;
  return plain({
    ...view.plan,
    blocked: isBlocked(view.plan) || view.refusals.length > 0,
    refusals: view.refusals,
    cautions: view.cautions ?? [],
    ...(size
      ? {
          size: {
            ...size,
            phases: size.phases.map((phase) => ({
              ...phase,
              ...(command ? { command: migrationCommand(command, phase.sources).join('\n') } : {}),
            })),
          },
        }
      : {}),
    steps: view.plan.steps.map((step: Step) => ({ ...step, description: describeStep(step) })),
  });
}

/**
 * What the transaction costs against the server's limits, which binds first, how the commit and the preview's
 * snapshot are bounded, and what the estimate assumes.
 */
export function sizeLines(view: PlanView): string[] {
  const { size } = view;
  if (!size) return [];
  const { cost } = size;
  const lines = [
    'Transaction size and time (an estimate: what it read, and what it assumed, are below):',
    `  ${cost.documents} document(s) changed, ~${mib(cost.bytes)} dirtied in cache (documents ${mib(cost.documentBytes)}, index entries ${mib(cost.indexBytes)}, journal ${mib(cost.journalBytes)})`,
  ];
  for (const limit of size.limits) {
    lines.push(
      limit.name === 'cache'
        ? `  cache: ${mib(limit.used)} of ${mib(limit.limit)} (${percent(limit.share)}): ${limit.basis}`
        : `  time: ~${seconds(limit.used)} of ${seconds(limit.limit)} (${percent(limit.share)}): ${limit.basis}`,
    );
  }
  const { binding } = size;
  const past =
    binding.name === 'cache'
      ? size.cacheAbort
      : 'the server aborts it (TransactionExceededLifetimeLimitSeconds) and its next command fails with NoSuchTransaction';
  lines.push(`  binds first: the ${binding.name} (${percent(binding.share)} of its limit); past it ${past}`);
  if (size.commit) {
    const { commitMs, majorityWaitMs, settleMs } = size.commit;
    lines.push(
      `  commit: capped at ${seconds(commitMs / 1000)} (maxCommitTimeMS), waiting at most ${seconds(majorityWaitMs / 1000)} for a majority to confirm it (w: majority, wtimeout); a lost answer is settled within ${seconds(settleMs / 1000)} more`,
    );
  }
  if (size.snapshotWindowSeconds !== undefined) {
    lines.push(
      `  reads: one snapshot, which the server keeps readable for ${size.snapshotWindowSeconds} s (minSnapshotHistoryWindowInSeconds): the preview, and verify, must finish within that`,
    );
  }
  lines.push(`  assumed: ${size.assumptions.join('; ')}`);
  return lines;
}

/** The phases proposed when the transaction would exceed a limit, each as a command to paste. */
export function phaseLines(view: PlanView): string[] {
  const phases = view.size?.phases ?? [];
  if (phases.length < 2) return [];
  const lines = ['Phases, in this order (review each with --preview first):'];
  phases.forEach((phase, index) => {
    const shares = Object.entries(phase.shares)
      .map(([name, share]) => `${name} ${percent(share)}`)
      .join(', ');
    lines.push(`  ${index + 1}. ${phase.sources.map((s) => showName(s.username)).join(', ')} (${shares})`);
    if (view.command)
      lines.push(...migrationCommand(view.command, phase.sources).map((line) => `     ${line}`));
  });
  return lines;
}

/**
 * The same migration for some of its sources, as the operator pastes it: the same destination, options,
 * target, history file and reference map. A URI holding a password is never printed: the command then reads
 * it from MONGODB_URI, and a first line says so.
 */
export function migrationCommand(
  command: CommandShape,
  sources: { _id: ObjectId; username: string }[],
): string[] {
  const { parts, note } = migrateCommand(
    command,
    sources.map((source) => tokenOf(command.request, source)),
  );
  return [...(note ? [`# ${note}`] : []), parts.join(' ')];
}

/** That command for the sources given as `tokens` (the one renderer: command-line.ts). */
export function migrateCommand(command: CommandShape, tokens: string[]): OperatorCommand {
  return operatorCommand(
    [
      `--sources ${shellWord(tokens.join(','))}`,
      `--destination ${shellWord(command.request.destination)}`,
      command.options.mergeConflicts ? '--merge-conflicts' : '',
      command.options.convertToAdmin ? '--convert-to-admin' : '',
      command.options.skipInvoices ? '--skip-invoices' : '',
    ].filter(Boolean),
    command,
  );
}

/** The source as it was typed in --sources, or its id. */
function tokenOf(request: CustomerRequest, source: { _id: ObjectId; username: string }): string {
  const id = source._id.toHexString();
  return (
    request.sources
      .find((token) => token.trim() === source.username || token.trim().toLowerCase() === id)
      ?.trim() ?? id
  );
}

function seconds(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} s`;
}
