import { showName } from '../plan/resolve.js';
import { isBlocked, nothingToDo } from '../plan/scan.js';
import { describeStep } from '../transaction/apply.js';
import {
  type CommandShape,
  conflictLines,
  migrateCommand,
  nothingToDoText,
  type PlanView,
  phaseLines,
  sizeLines,
} from './report.js';

/** What the Markdown needs of the command: enough to print the one that executes exactly this plan. */
export type PlannedCommand = CommandShape;

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
    ...(view.size ? ['```', ...sizeLines(view), '```', ''] : []),
    ...plan.warnings.map((warning) => `- WARNING: ${warning}`),
    ...(view.cautions ?? []).map((caution) => `- BEFORE EXECUTING: ${caution}`),
    '',
    ...(phaseLines(view).length > 0 ? ['```', ...phaseLines(view), '```', ''] : []),
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

/** The command as typed, plus --expect-plan; a URI holding a password is read from MONGODB_URI, never printed. */
function executeCommand(command: PlannedCommand, fingerprint: string): string {
  const { parts, note } = migrateCommand(command, command.request.sources);
  return `${note ? `# ${note}\n` : ''}${[...parts, `--expect-plan ${fingerprint}`].join(' \\\n  ')}`;
}
