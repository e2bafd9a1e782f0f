/**
 * Every failure a user can meet is one of these; the entry point is the only place that turns one into a
 * message line and an exit code (see the README's exit code table).
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  conflicts: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

interface ErrorDetails {
  cause?: unknown;
  /** Extra facts for DEBUG output and the history record; never secrets. */
  context?: Record<string, unknown>;
}

export abstract class MigrationError extends Error {
  abstract readonly exitCode: ExitCode;
  readonly context: Record<string, unknown>;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.context = details.context ?? {};
  }
}

/** Invalid usage or input: nothing was written, and nothing is recorded in the history. */
export class UsageError extends MigrationError {
  readonly exitCode = ExitCode.usage;
}

/** The migration would leave two accounts with one username under the destination. */
export class ConflictError extends MigrationError {
  readonly exitCode = ExitCode.conflicts;
}

/** Failed at run time; any transaction was rolled back. */
export class RuntimeError extends MigrationError {
  readonly exitCode = ExitCode.failed;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
