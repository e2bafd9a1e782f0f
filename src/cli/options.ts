import { readFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  HISTORY_STATUSES,
  type HistoryStatus,
  type MigrateCommand,
  type Place,
  type ToolCommand,
} from '../commands/command.js';
import { UsageError } from '../shared/errors.js';
import { closeSpellings } from '../shared/spelling.js';
import type { StoreTarget } from '../store/types.js';

/** The project root (next to package.json): this file runs as dist/src/cli/options.js. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const DEFAULT_HISTORY_FILE = resolve(PROJECT_ROOT, 'migration_history.json');
export const DEFAULT_URI = 'mongodb://127.0.0.1:27017/agmission';
export interface OptionContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const EXIT_CODES = `
Exit codes:
  0  success: the preview found nothing blocking, the migration or rollback completed, verify passed
  1  failed at run time, and nothing was committed ("failed" record appended, unless another run held the lock)
  2  invalid usage or input; nothing was written anywhere, no record
  3  blocked (username conflicts, references the tool cannot move, drift before a rollback); nothing changed
  4  COMPLETED, but the record could not be written or the run was interrupted after its commit; the
     record is printed on stderr: keep it
  5  outcome UNKNOWN: the commit may or may not have happened ("unknown" record; the message says how to check)
  6  verify: at least one check failed
  7  stopped by Ctrl-C/SIGTERM/SIGHUP while only reading (a preview, verify, rollback --preview, history):
     no result, nothing was written`;

const EXAMPLES = `
Examples:
  node scripts/migrateCustomerData.js --preview --sources acme_aviation,regional_ag --destination consolidated_ag
  node scripts/migrateCustomerData.js --sources acme_west,acme_east --destination acme_corporate --convert-to-admin
  node scripts/migrateCustomerData.js verify
  node scripts/migrateCustomerData.js rollback <migrationId> --preview
  node scripts/migrateCustomerData.js history --status failed

Each option is given once; --sources takes one comma-separated list (given twice, it is refused).
A value starting with "-" is taken for a forgotten value and refused: write a path like that as ./-file.

Environment:
  MONGODB_URI   connection string when --uri is not given (default ${DEFAULT_URI})
  DEBUG         agm:migrate-customer-data (pipeline), agm:mongo_enhanced (every database command), agm:*`;

/**
 * Every option that takes a value gets this parser first: a value that is empty (an unset shell variable), that
 * starts with "-" (the value was forgotten and the next option taken for it), or that repeats an option given
 * once already (the first would be silently dropped) is refused before anything runs.
 */
function value<T = string>(name: string, isPath: boolean, parse?: (text: string) => T) {
  return (text: string, previous: unknown): T | string => {
    if (previous !== undefined) throw new InvalidArgumentError(`${name} is given twice; give it once`);
    if (text.trim() === '') throw new InvalidArgumentError(`it is empty; give a value to ${name}`);
    if (text.startsWith('-')) {
      throw new InvalidArgumentError(
        isPath
          ? `it looks like an option, so the value of ${name} is missing (a path starting with "-" can be written ./${text})`
          : `it looks like an option, so the value of ${name} is missing; give it right after ${name}`,
      );
    }
    return parse ? parse(text) : text;
  };
}

function customerList(text: string): string[] {
  const tokens = text.split(',').map((token) => token.trim());
  if (tokens.some((token) => token === '')) {
    throw new InvalidArgumentError('it has an empty entry; separate usernames/ids with single commas');
  }
  return tokens;
}

function customerRef(text: string): string {
  const token = text.trim();
  if (token.includes(','))
    throw new InvalidArgumentError('there is exactly one destination; give one username or id');
  return token;
}

function fingerprint(text: string): string {
  if (!/^[0-9a-f]{16}$/.test(text))
    throw new InvalidArgumentError('expected the 16-hex fingerprint a preview prints');
  return text;
}

function historyStatus(text: string): HistoryStatus {
  const status = HISTORY_STATUSES.find((candidate) => candidate === text);
  if (!status) throw new InvalidArgumentError(`expected one of ${HISTORY_STATUSES.join(', ')}`);
  return status;
}

function valueOption(flags: string, description: string, parse?: (text: string) => unknown): Option {
  const option = new Option(flags, description);
  // Only a path can sensibly start with "-" (written ./-x); other values get advice about the value itself.
  const isPath = /<(path|file[^>]*)>/.test(flags);
  return option.argParser(value(option.long ?? flags, isPath, parse));
}

/** Where to find the history file: --output-file, else next to a snapshot (a rehearsal has its own trail). */
function historyOptions(command: Command): Command {
  return command
    .addOption(
      valueOption(
        '--output-file <path>',
        'history file (default: migration_history.json in the tool folder; with --snapshot or --dump, <name>.history.json beside the snapshot file or dump folder)',
      ),
    )
    .option('--json', 'print one plain JSON document on stdout');
}

function placeOptions(command: Command): Command {
  return historyOptions(command)
    .addOption(
      valueOption(
        '--uri <mongodb-uri>',
        `MongoDB connection string (default: $MONGODB_URI, else ${DEFAULT_URI})`,
      ),
    )
    .addOption(
      valueOption(
        '--snapshot <file>',
        'run against an Extended JSON snapshot file instead of a server',
      ).conflicts('uri'),
    )
    .addOption(
      valueOption(
        '--dump <path>',
        'run against a mongodump folder (one database, or the --out folder holding one; .bson or .bson.gz) instead of a server',
      ).conflicts(['uri', 'snapshot']),
    )
    .addOption(
      valueOption(
        '--config <file>',
        'JSON reference map of collections/fields (default: the AgMission schema)',
      ),
    );
}

function finish(command: Command, context: OptionContext): Command {
  return command
    .exitOverride()
    .configureOutput({ writeOut: context.stdout, writeErr: context.stderr })
    .showHelpAfterError('(run with --help for usage)')
    .allowExcessArguments(false);
}

function version(): string {
  return JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).version;
}

function buildProgram(context: OptionContext, chosen: (command: ToolCommand) => void): Command {
  const program = placeOptions(
    new Command('migrateCustomerData.js')
      .description(
        'Merge customer accounts (with their sub-accounts, jobs and invoices) into a destination customer, in one transaction.',
      )
      .version(version(), '--version', 'print the version')
      .helpCommand(true)
      .enablePositionalOptions()
      .addOption(
        valueOption(
          '--sources <list>',
          'source customers: comma-separated usernames and/or 24-hex ids',
          customerList,
        ),
      )
      .addOption(
        valueOption('--destination <ref>', 'destination customer: username or 24-hex id', customerRef),
      )
      .option('--preview', 'show what would happen and write nothing (always do this first)')
      .option(
        '--merge-conflicts',
        'merge same-kind conflicting accounts into the existing ones instead of aborting',
      )
      .option('--convert-to-admin', "keep each source customer as an admin (kind '2') under the destination")
      .option(
        '--skip-invoices',
        'leave invoices (customer and account references) with the source customers',
      ),
  )
    .addOption(
      valueOption(
        '--expect-plan <fingerprint>',
        'execute only if the plan still has this fingerprint (from a preview)',
        fingerprint,
      ).conflicts('preview'),
    )
    .addOption(valueOption('--report <file.md>', 'with --preview: also write the preview as Markdown'))
    .option(
      '--force',
      'with --report: replace an existing file this tool did not write (never the snapshot, the history file or a lock)',
    )
    .addHelpText('after', `${EXIT_CODES}\n${EXAMPLES}`)
    .action((raw: Record<string, unknown>) => chosen(migrateCommand(raw, context)));

  finish(
    placeOptions(
      program
        .command('rollback')
        .description('reverse a completed migration exactly, from its journal (one transaction)')
        .argument('<migrationId>', 'the id of the migration (history record id)')
        .option('--preview', 'show what would be restored and the drift check, write nothing'),
    ),
    context,
  ).action((migrationId: string, raw: Record<string, unknown>) =>
    chosen({ action: 'rollback', migrationId, preview: raw.preview === true, ...place(raw, context) }),
  );

  finish(
    placeOptions(
      program
        .command('verify')
        .description("check a migration's result with the guide's own checks (exit 6 when one fails)")
        .argument('[migrationId]', 'default: the latest completed migration in the history file')
        .option(
          '--scan-all',
          "also search every collection for any field holding a source's id (reads everything)",
        ),
    ),
    context,
  ).action((migrationId: string | undefined, raw: Record<string, unknown>) =>
    chosen({
      action: 'verify',
      ...(migrationId === undefined ? {} : { migrationId }),
      scanAll: raw.scanAll === true,
      ...place(raw, context),
    }),
  );

  finish(
    historyOptions(
      program
        .command('history')
        .description(
          'print the history file as a table (reads only that file: no --uri or --config; --snapshot or --dump finds a rehearsal’s history)',
        )
        .addOption(
          valueOption(
            '--status <status>',
            `only records with this status (${HISTORY_STATUSES.join('|')})`,
            historyStatus,
          ),
        )
        .addOption(
          valueOption('--snapshot <file>', 'the rehearsal whose history to show (its default history file)'),
        )
        .addOption(
          valueOption(
            '--dump <path>',
            'the rehearsal on a mongodump folder whose history to show (its default history file)',
          ).conflicts('snapshot'),
        ),
    ),
    context,
  ).action((raw: Record<string, unknown>) =>
    chosen({
      action: 'history',
      historyFile: historyFile(raw, context),
      json: raw.json === true,
      ...(raw.status === undefined ? {} : { status: raw.status as HistoryStatus }),
    }),
  );

  return finish(program, context);
}

const HELP_CODES = new Set(['commander.help', 'commander.helpDisplayed', 'commander.version']);

/** Thrown when commander printed help or the version; the caller exits 0. */
export class HelpShown extends Error {}

export function parseOptions(argv: string[], context: OptionContext): ToolCommand {
  let command: ToolCommand | undefined;
  const program = buildProgram(context, (chosen) => {
    command = chosen;
  });
  checkCommandName(argv[0], program);
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // By code, not exit code: commander's `help` command exits with process.exitCode, which a host process
      // (a test runner) may have set.
      if (HELP_CODES.has(error.code)) throw new HelpShown();
      // commander has already printed its one-line message and the hint.
      throw new UsageError(error.message.replace(/^error: /, ''), {
        cause: error,
        context: { printed: true },
      });
    }
    throw error;
  }
  if (!command) throw new Error('unreachable: commander ran no action');
  return command;
}

/**
 * A first word that is not an option can only be a command: a misspelled one is named as such, with the command
 * it was probably meant to be (a migration itself takes options only, so commander would call the word an extra
 * argument).
 */
function checkCommandName(first: string | undefined, program: Command): void {
  if (first === undefined || first.startsWith('-')) return;
  const names = [...program.commands.map((command) => command.name()), 'help'];
  if (names.includes(first)) return;
  const [guess] = closeSpellings(first, names, (name) => name.toLowerCase());
  throw new UsageError(
    guess
      ? `unknown command '${first}'; did you mean ${guess}?`
      : `unknown command '${first}'; the commands are ${names.join(', ')} (a migration takes options only: --sources <list> --destination <ref>)`,
  );
}

function migrateCommand(raw: Record<string, unknown>, context: OptionContext): MigrateCommand {
  // Checked here, not by commander, so that an unknown option is reported before a missing one.
  for (const [key, flag] of [
    ['sources', '--sources <list>'],
    ['destination', '--destination <ref>'],
  ] as const) {
    if (raw[key] === undefined) throw new UsageError(`required option '${flag}' not specified; see --help`);
  }
  if (raw.report !== undefined && raw.preview !== true) {
    throw new UsageError('--report writes a preview as Markdown: add --preview (it never runs a migration)');
  }
  if (raw.force === true && raw.report === undefined) {
    throw new UsageError(
      '--force only lets --report replace an existing file: add --preview --report <file.md>',
    );
  }
  return {
    action: 'migrate',
    preview: raw.preview === true,
    request: { sources: raw.sources as string[], destination: raw.destination as string },
    options: {
      mergeConflicts: raw.mergeConflicts === true,
      convertToAdmin: raw.convertToAdmin === true,
      skipInvoices: raw.skipInvoices === true,
    },
    ...place(raw, context),
    ...(raw.expectPlan === undefined ? {} : { expectPlan: raw.expectPlan as string }),
    ...(raw.report === undefined ? {} : { reportFile: resolve(context.cwd, raw.report as string) }),
    force: raw.force === true,
  };
}

function place(raw: Record<string, unknown>, context: OptionContext): Place {
  return {
    target: target(raw, context),
    historyFile: historyFile(raw, context),
    json: raw.json === true,
    ...(raw.config === undefined ? {} : { configFile: resolve(context.cwd, raw.config as string) }),
  };
}

function target(raw: Record<string, unknown>, context: OptionContext): StoreTarget {
  if (raw.snapshot !== undefined)
    return { kind: 'snapshot', file: resolve(context.cwd, raw.snapshot as string) };
  if (raw.dump !== undefined) return { kind: 'dump', dir: resolve(context.cwd, raw.dump as string) };
  // Spaces around a pasted URI are not part of it (a connection string holds none): the driver would call
  // " mongodb://..." an invalid scheme.
  if (raw.uri !== undefined) return { kind: 'mongodb', uri: (raw.uri as string).trim() };
  const fromEnvironment = context.env.MONGODB_URI?.trim();
  if (fromEnvironment === '') {
    throw new UsageError('MONGODB_URI is set but empty; set it to a connection string, or give --uri');
  }
  return { kind: 'mongodb', uri: fromEnvironment ?? DEFAULT_URI };
}

function historyFile(raw: Record<string, unknown>, context: OptionContext): string {
  if (raw.outputFile !== undefined) return resolve(context.cwd, raw.outputFile as string);
  if (raw.snapshot !== undefined) return rehearsalHistoryFile(resolve(context.cwd, raw.snapshot as string));
  if (raw.dump !== undefined) return rehearsalHistoryFile(resolve(context.cwd, raw.dump as string));
  return DEFAULT_HISTORY_FILE;
}

/**
 * `agmission.json` -> `agmission.history.json` beside it (a dump folder `nightly/agm` -> `nightly/agm.history.json`):
 * a rehearsal never mixes into the production trail.
 */
function rehearsalHistoryFile(snapshot: string): string {
  const name = basename(snapshot, extname(snapshot));
  return join(dirname(snapshot), `${name}.history.json`);
}
