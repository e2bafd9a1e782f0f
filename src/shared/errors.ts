/**
 * Every failure a user can meet is one of these; the entry point is the only place that turns one into a
 * message line and an exit code (see the README's exit code table). The codes say what happened to the data.
 */
export const ExitCode = {
  ok: 0,
  /** Failed, and the tool knows nothing was committed. */
  failed: 1,
  usage: 2,
  /** Blocked before writing: conflicts, references the tool cannot move, drift before a rollback. */
  blocked: 3,
  /** The change COMPLETED, but its record could not be written or the run was interrupted after the commit. */
  completedUnrecorded: 4,
  /** The commit may or may not have happened, and the server could not be asked. */
  unknown: 5,
  /** verify: at least one check failed. */
  checksFailed: 6,
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

/** Stopped before writing anything: username conflicts, unmovable references, drift. */
export class BlockedError extends MigrationError {
  readonly exitCode = ExitCode.blocked;
}

/** Failed at run time, and nothing was committed (the transaction, if any, was rolled back). */
export class RuntimeError extends MigrationError {
  readonly exitCode = ExitCode.failed;
}

/** The commit was sent, and its outcome is not known (a network error, a write-concern error, a timeout). */
export class CommitUnknownError extends MigrationError {
  readonly exitCode = ExitCode.unknown;
  constructor(
    message: string,
    /** What the last attempt of the transaction's work returned: what was committed, if it was. */
    readonly result: unknown,
    details: ErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** The work committed, and something after the commit failed (the record, an interruption). */
export class CompletedUnrecordedError extends MigrationError {
  readonly exitCode = ExitCode.completedUnrecorded;
}

/** The operator interrupted the run (Ctrl-C, SIGTERM, a dropped ssh session) before anything was committed. */
export class InterruptedError extends MigrationError {
  readonly exitCode = ExitCode.failed;
}

/** Anything thrown becomes a MigrationError; what the tool did not foresee happened before any commit. */
export function asMigrationError(error: unknown): MigrationError {
  if (error instanceof Error && 'exitCode' in error && 'context' in error) return error as MigrationError;
  return new RuntimeError(
    `Unexpected error: ${errorMessage(error)}; nothing was committed (details: DEBUG=agm:*)`,
    {
      cause: error,
    },
  );
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
