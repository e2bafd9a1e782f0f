import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { UsageError } from './errors.js';
import type { CustomerRequest } from './resolve.js';
import type { MigrationOptions } from './scan.js';
import type { StoreTarget } from './store/types.js';

/** The project root (next to package.json): this file runs as dist/src/options.js. */
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEFAULT_HISTORY_FILE = resolve(PROJECT_ROOT, 'migration_history.json');
export const DEFAULT_URI = 'mongodb://127.0.0.1:27017/agmission';

export interface MigrateCommand {
  preview: boolean;
  request: CustomerRequest;
  options: MigrationOptions;
  target: StoreTarget;
  historyFile: string;
  configFile?: string;
  json: boolean;
  expectPlan?: string;
}

export interface OptionContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const EXIT_CODES = `
Exit codes:
  0  success: the preview found nothing blocking, or the migration completed
  1  failed at run time; the transaction was rolled back and a "failed" record appended
  2  invalid usage or input; nothing was written anywhere
  3  blocked by username conflicts; nothing was changed (execute appends a "failed" record)

Examples:
  node scripts/migrateCustomerData.js --preview --sources acme_aviation,regional_ag --destination consolidated_ag
  node scripts/migrateCustomerData.js --sources acme_west,acme_east --destination acme_corporate --convert-to-admin

Environment:
  MONGODB_URI   connection string when --uri is not given (default ${DEFAULT_URI})
  DEBUG         agm:migrate-customer-data (pipeline), agm:mongo_enhanced (every database command), agm:*`;

function customerList(value: string): string[] {
  const tokens = value.split(',').map((token) => token.trim());
  if (tokens.some((token) => token === '')) {
    throw new InvalidArgumentError('it has an empty entry; separate usernames/ids with single commas');
  }
  return tokens;
}

function customerRef(value: string): string {
  const token = value.trim();
  if (token === '') throw new InvalidArgumentError('it is empty; give one username or id');
  if (token.includes(','))
    throw new InvalidArgumentError('there is exactly one destination; give one username or id');
  return token;
}

function fingerprint(value: string): string {
  if (!/^[0-9a-f]{16}$/.test(value))
    throw new InvalidArgumentError('expected the 16-hex fingerprint a preview prints');
  return value;
}

function buildProgram(context: OptionContext): Command {
  return new Command('migrateCustomerData.js')
    .description(
      'Merge customer accounts (with their sub-accounts, jobs and invoices) into a destination customer, in one transaction.',
    )
    .requiredOption(
      '--sources <list>',
      'source customers: comma-separated usernames and/or 24-hex ids',
      customerList,
    )
    .requiredOption('--destination <ref>', 'destination customer: username or 24-hex id', customerRef)
    .option('--preview', 'show what would happen and write nothing (always do this first)')
    .option(
      '--merge-conflicts',
      'merge same-kind conflicting accounts into the existing ones instead of aborting',
    )
    .option('--convert-to-admin', "keep each source customer as an admin (kind '2') under the destination")
    .option('--skip-invoices', 'leave invoices (customer and account references) with the source customers')
    .option('--output-file <path>', 'history file to append the run record to', DEFAULT_HISTORY_FILE)
    .addOption(
      new Option(
        '--uri <mongodb-uri>',
        `MongoDB connection string (default: $MONGODB_URI, else ${DEFAULT_URI})`,
      ),
    )
    .addOption(
      new Option(
        '--snapshot <file>',
        'run against an Extended JSON snapshot file instead of a server',
      ).conflicts('uri'),
    )
    .option('--config <file>', 'JSON reference map of collections/fields (default: the AgMission schema)')
    .option('--json', 'print the plan/result as one plain JSON document on stdout')
    .addOption(
      new Option(
        '--expect-plan <fingerprint>',
        'execute only if the plan still has this fingerprint (from a preview)',
      )
        .argParser(fingerprint)
        .conflicts('preview'),
    )
    .addHelpText('after', EXIT_CODES)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: context.stdout, writeErr: context.stderr })
    .allowExcessArguments(false);
}

/** Thrown when commander printed help; the caller exits 0. */
export class HelpShown extends Error {}

export function parseOptions(argv: string[], context: OptionContext): MigrateCommand {
  const program = buildProgram(context);
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) throw new HelpShown();
      // commander has already printed its one-line message and the hint.
      throw new UsageError(error.message.replace(/^error: /, ''), {
        cause: error,
        context: { printed: true },
      });
    }
    throw error;
  }
  const raw = program.opts();
  const target: StoreTarget = raw.snapshot
    ? { kind: 'snapshot', file: resolve(context.cwd, raw.snapshot) }
    : { kind: 'mongodb', uri: raw.uri ?? context.env.MONGODB_URI ?? DEFAULT_URI };
  return {
    preview: raw.preview === true,
    request: { sources: raw.sources, destination: raw.destination },
    options: {
      mergeConflicts: raw.mergeConflicts === true,
      convertToAdmin: raw.convertToAdmin === true,
      skipInvoices: raw.skipInvoices === true,
    },
    target,
    historyFile: resolve(context.cwd, raw.outputFile),
    configFile: raw.config === undefined ? undefined : resolve(context.cwd, raw.config),
    json: raw.json === true,
    expectPlan: raw.expectPlan,
  };
}
