import { format } from 'node:util';
import createDebug from 'debug';
import { HelpShown, type OptionContext, parseOptions } from './cli/options.js';
import type { ToolCommand } from './commands/command.js';
import type { ActionContext } from './commands/context.js';
import { executeMigration } from './commands/execute.js';
import { showHistory } from './commands/history.js';
import { previewMigration } from './commands/preview.js';
import { rollbackMigration } from './commands/rollback.js';
import { verifyMigration } from './commands/verify.js';
import { asMigrationError, ExitCode } from './shared/errors.js';
import { type Interruption, type SignalSource, watchSignals } from './shared/interrupt.js';
import { createOutput, type Output } from './shared/output.js';
import { redactText, secretsOf } from './shared/secrets.js';
import { openReadOnlyStore, openStore } from './store/index.js';

const log = createDebug('agm:migrate-customer-data');

/** What main needs from the world; tests pass their own. */
export interface Environment extends OptionContext {
  openReadOnlyStore: typeof openReadOnlyStore;
  openStore: typeof openStore;
  /** Where SIGINT, SIGTERM and SIGHUP arrive (the process); tests pass an emitter of their own. */
  signals?: SignalSource;
  /** Ends the process at once (a second Ctrl-C); tests replace it. */
  exit?: (code: number) => void;
  /** stderr is a terminal: long reads of a dump say how far they are there (never under --json). */
  stderrIsTerminal?: boolean;
}

export function processEnvironment(): Environment {
  return {
    env: process.env,
    cwd: process.cwd(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    openReadOnlyStore,
    openStore,
    exit: (code) => process.exit(code),
    stderrIsTerminal: process.stderr.isTTY === true,
  };
}

/** What a command that only reads is called in the message that stops it; undefined for those that write. */
function readOnlyCommand(command: ToolCommand): string | undefined {
  switch (command.action) {
    case 'migrate':
      return command.preview ? 'the preview' : undefined;
    case 'rollback':
      return command.preview ? 'the rollback preview' : undefined;
    case 'verify':
      return 'verify';
    case 'history':
      return 'history';
  }
}

/** Each command is an action module; they share the stages and the store contract. */
function run(command: ToolCommand, output: Output, context: ActionContext): Promise<ExitCode> {
  switch (command.action) {
    case 'migrate':
      return command.preview
        ? previewMigration(command, output, context)
        : executeMigration(command, output, context);
    case 'rollback':
      return rollbackMigration(command, output, context);
    case 'verify':
      return verifyMigration(command, output, context);
    case 'history':
      return showHistory(command, output);
  }
}

/**
 * The whole tool: parse options, then run the command's action (preview, execute, rollback, verify, history).
 * The only place an error becomes a message and an exit code.
 */
/** The stores opened with a progress line on stderr for long reads, when it is a terminal and not --json. */
function withProgress(environment: Environment, command: ToolCommand, output: Output): Environment {
  if (!environment.stderrIsTerminal || command.json) return environment;
  const progress = (line: string) => output.progress(line);
  return {
    ...environment,
    openReadOnlyStore: (target, options = {}) =>
      environment.openReadOnlyStore(target, { ...options, progress }),
    openStore: (target, options = {}) => environment.openStore(target, { ...options, progress }),
  };
}

export async function main(
  argv: string[],
  environment: Environment = processEnvironment(),
): Promise<ExitCode> {
  const secrets = [environment.env.MONGODB_URI, ...argv].flatMap(secretsOf);
  // DEBUG output (errors with their causes, driver messages) passes the same filter as everything else.
  createDebug.log = (...args: unknown[]) => process.stderr.write(`${redactText(format(...args), secrets)}\n`);
  const safeStreams = createOutput(environment, false, secrets);
  let command: ToolCommand;
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
  const readOnly = readOnlyCommand(command);
  const interruption: Interruption = watchSignals(
    environment.signals ?? process,
    (line) => output.error(line),
    (stop) => {
      if (command.json && !output.jsonWritten) {
        output.json({
          status: 'error',
          error: { message: stop.message, exitCode: stop.exitCode, kind: 'Stopped' },
        });
      }
      (environment.exit ?? process.exit)(stop.exitCode);
    },
    readOnly === undefined ? {} : { readOnly },
  );
  try {
    log('command %s', command.action);
    return await run(command, output, { ...withProgress(environment, command, output), interruption });
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
  } finally {
    interruption.dispose();
  }
}
