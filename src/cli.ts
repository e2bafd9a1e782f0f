import { format } from 'node:util';
import createDebug from 'debug';
import { ExitCode } from './errors.js';
import { asMigrationError, executeMigration } from './execute.js';
import { HelpShown, type MigrateCommand, type OptionContext, parseOptions } from './options.js';
import { createOutput } from './output.js';
import { previewMigration } from './preview.js';
import { redactText, secretsOf } from './secrets.js';
import { openReadOnlyStore, openStore } from './store/index.js';

const log = createDebug('agm:migrate-customer-data');

/** What main needs from the world; tests pass their own. */
export interface Environment extends OptionContext {
  openReadOnlyStore: typeof openReadOnlyStore;
  openStore: typeof openStore;
}

export function processEnvironment(): Environment {
  return {
    env: process.env,
    cwd: process.cwd(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    openReadOnlyStore,
    openStore,
  };
}

/**
 * The whole tool: parse options, then preview (resolve, scan, report) or execute (resolve, scan, apply in
 * one transaction, record history). The only place an error becomes a message and an exit code.
 */
export async function main(
  argv: string[],
  environment: Environment = processEnvironment(),
): Promise<ExitCode> {
  const secrets = [environment.env.MONGODB_URI, ...argv].flatMap(secretsOf);
  // DEBUG output (errors with their causes, driver messages) passes the same filter as everything else.
  createDebug.log = (...args: unknown[]) => process.stderr.write(`${redactText(format(...args), secrets)}\n`);
  let command: MigrateCommand | undefined;
  const safeStreams = createOutput(environment, false, secrets);
  try {
    command = parseOptions(argv, {
      ...environment,
      stdout: (text) => safeStreams.report(text),
      stderr: (text) => safeStreams.error(text.trimEnd()),
    });
  } catch (error) {
    if (error instanceof HelpShown) return ExitCode.ok;
    const failure = asMigrationError(error);
    if (!failure.context.printed) safeStreams.error(`Error: ${failure.message}`);
    return failure.exitCode;
  }

  const output = createOutput(environment, command.json, secrets);
  try {
    log('command %O', { ...command, target: command.target.kind });
    return command.preview
      ? await previewMigration(command, output, environment.openReadOnlyStore)
      : await executeMigration(command, output, environment.openStore);
  } catch (error) {
    const failure = asMigrationError(error);
    log('%s: %O', failure.name, error);
    output.error(`Error: ${failure.message}`);
    if (command.json && !output.jsonWritten) {
      output.json({
        status: 'error',
        error: { message: failure.message, exitCode: failure.exitCode, kind: failure.name },
      });
    }
    return failure.exitCode;
  }
}
