import { type CustomerRequest, showName } from '../plan/resolve.js';
import { isBlocked, type MigrationOptions, nothingToDo } from '../plan/scan.js';
import { redactUri } from '../shared/secrets.js';
import type { StoreTarget } from '../store/types.js';
import { describeStep } from '../transaction/apply.js';
import { conflictLines, nothingToDoText, type PlanView } from './report.js';

/** What the Markdown needs of the command: enough to print the one that executes exactly this plan. */
export interface PlannedCommand {
  request: CustomerRequest;
  options: MigrationOptions;
  target: StoreTarget;
  configFile?: string;
  historyFile: string;
}

/**
 * The preview as Markdown, for the maintenance window's change ticket: what moves, what clashes and how it is
 * resolved, what will run, and the exact command that runs this plan and no other.
 */
export function renderMarkdown(view: PlanView, command: PlannedCommand): string {
  const { plan } = view;
  const blocked = isBlocked(plan) || view.refusals.length > 0;
  const idle = !blocked && nothingToDo(plan);
  const lines: string[] = [
    `# Customer data migration: ${plan.sources.map((s) => showName(s.username)).join(', ')} into ${showName(plan.destination.username)}`,
    '',
    `- Target: ${view.target}`,
    `- Prepared: ${new Date().toISOString()} (preview; nothing was written)`,
    `- Options: ${optionText(command)}`,
    `- Plan fingerprint: \`${plan.fingerprint}\``,
    `- Verdict: ${blocked ? '**BLOCKED**' : idle ? nothingToDoText(plan) : 'would proceed'}`,
    '',
    '## Customers',
    '',
    '| role | username | id | sub-accounts | soft-deleted | note |',
    '| --- | --- | --- | --- | --- | --- |',
    ...[...plan.sources.map((s) => ['source', s] as const), ['destination', plan.destination] as const].map(
      ([role, c]) =>
        `| ${role} | ${cell(showName(c.username))} | \`${c._id.toHexString()}\` | ${c.subAccounts.total} | ${c.subAccounts.softDeleted} | ${[
          c.active ? '' : 'inactive',
          c.followUp ? 'follow-up' : '',
        ]
          .filter(Boolean)
          .join(', ')} |`,
    ),
    '',
    '## Documents to re-point',
    '',
    '| collection | field | ObjectId | hex string | inside arrays (blocked) | note |',
    '| --- | --- | --- | --- | --- | --- |',
    ...plan.fields.map((f) => {
      const count = (strings: boolean) =>
        f.moves
          .filter((m) => (typeof m.from === 'string') === strings)
          .reduce((sum, m) => sum + m.documents, 0);
      const role = f.kind === 'customer' ? 'source -> destination' : 'merged account -> survivor';
      return `| ${f.collection} | ${f.field} | ${count(false)} | ${count(true)} | ${f.arrays.documents} | ${f.skipped ? 'skipped (--skip-invoices)' : role} |`;
    }),
    '',
    '## Username conflicts',
    '',
    ...conflictLines(plan, 'preview').map((line) =>
      line.replace(/^ {2}(\d+)\./, '$1.').replace(/^ {5}/, '   '),
    ),
    '',
  ];
  if (idle) {
    lines.push('## Nothing to do', '', `${nothingToDoText(plan)}.`, '');
  } else if (!blocked) {
    lines.push('## Actions on execute (one transaction)', '');
    plan.steps.forEach((step, index) => {
      lines.push(`${index + 1}. ${describeStep(step)}: ${step.expected} document(s)`);
    });
    lines.push('', '## Expected afterwards (checked by `verify`)', '');
    for (const [field, counts] of Object.entries(plan.expectations.customerRefs)) {
      lines.push(
        `- ${field}: ${counts.live + counts.softDeleted} (${counts.live} live, ${counts.softDeleted} soft-deleted)`,
      );
    }
    lines.push(`- sub-accounts of kinds 3, 5, 9: ${plan.expectations.subAccounts}`, '');
  } else {
    lines.push('## Blocked', '');
    for (const blocker of plan.blockers) lines.push(`- ${blocker.message}`);
    for (const refusal of view.refusals) lines.push(`- ${refusal.message}`);
    lines.push('');
  }
  lines.push(
    '## Size and warnings',
    '',
    `- ${plan.estimate.documents} document(s) modified in one transaction (warning above ${view.threshold.documents}: ${view.threshold.basis})`,
    ...plan.warnings.map((warning) => `- WARNING: ${warning}`),
    '',
  );
  if (!blocked && !idle) {
    lines.push(
      '## Command to execute exactly this plan',
      '',
      '```sh',
      executeCommand(command, plan.fingerprint),
      '```',
      '',
    );
  }
  return lines.join('\n');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function optionText(command: PlannedCommand): string {
  const flags = [
    command.options.mergeConflicts ? '--merge-conflicts' : '',
    command.options.convertToAdmin ? '--convert-to-admin' : '',
    command.options.skipInvoices ? '--skip-invoices' : '',
  ].filter(Boolean);
  return flags.length === 0 ? 'none' : flags.join(' ');
}

function quote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The command as typed, plus --expect-plan; a URI given with --uri appears with its password masked. */
function executeCommand(command: PlannedCommand, fingerprint: string): string {
  const parts = [
    'node scripts/migrateCustomerData.js',
    `--sources ${quote(command.request.sources.join(','))}`,
    `--destination ${quote(command.request.destination)}`,
    optionText(command) === 'none' ? '' : optionText(command),
    command.target.kind === 'snapshot' ? `--snapshot ${quote(command.target.file)}` : '',
    command.configFile ? `--config ${quote(command.configFile)}` : '',
    `--output-file ${quote(command.historyFile)}`,
    `--expect-plan ${fingerprint}`,
  ];
  const uri =
    command.target.kind === 'mongodb'
      ? `# connection: ${redactUri(command.target.uri)} (from --uri or MONGODB_URI)\n`
      : '';
  return `${uri}${parts.filter(Boolean).join(' \\\n  ')}`;
}
