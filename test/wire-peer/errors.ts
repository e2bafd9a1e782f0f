import type { Document } from 'mongodb';

/** The server's names for the codes this peer answers with (error_codes.yml). */
const CODE_NAMES: Record<number, string> = {
  1: 'InternalError',
  2: 'BadValue',
  6: 'HostUnreachable',
  7: 'HostNotFound',
  8: 'UnknownError',
  9: 'FailedToParse',
  11: 'UserNotFound',
  13: 'Unauthorized',
  18: 'AuthenticationFailed',
  20: 'IllegalOperation',
  24: 'LockTimeout',
  26: 'NamespaceNotFound',
  27: 'IndexNotFound',
  43: 'CursorNotFound',
  48: 'NamespaceExists',
  50: 'MaxTimeMSExpired',
  59: 'CommandNotFound',
  64: 'WriteConcernFailed',
  66: 'ImmutableField',
  72: 'InvalidOptions',
  79: 'UnknownReplWriteConcern',
  85: 'IndexOptionsConflict',
  86: 'IndexKeySpecsConflict',
  89: 'NetworkTimeout',
  91: 'ShutdownInProgress',
  100: 'UnsatisfiableWriteConcern',
  112: 'WriteConflict',
  117: 'ConflictingOperationInProgress',
  134: 'ReadConcernMajorityNotAvailableYet',
  189: 'PrimarySteppedDown',
  225: 'TransactionTooOld',
  238: 'NotImplemented',
  239: 'SnapshotTooOld',
  246: 'SnapshotUnavailable',
  251: 'NoSuchTransaction',
  256: 'TransactionCommitted',
  262: 'ExceededTimeLimit',
  263: 'OperationNotSupportedInTransaction',
  290: 'TransactionExceededLifetimeLimitSeconds',
  352: 'UnsupportedOpQueryCommand',
  388: 'TransactionTooLargeForCache',
  9001: 'SocketException',
  10107: 'NotWritablePrimary',
  11000: 'DuplicateKey',
  11600: 'InterruptedAtShutdown',
  11602: 'InterruptedDueToReplStateChange',
  13435: 'NotPrimaryNoSecondaryOk',
  13436: 'NotPrimaryOrSecondary',
};

export const Code = {
  BadValue: 2,
  IllegalOperation: 20,
  NamespaceNotFound: 26,
  IndexNotFound: 27,
  CursorNotFound: 43,
  NamespaceExists: 48,
  CommandNotFound: 59,
  ImmutableField: 66,
  InvalidOptions: 72,
  IndexKeySpecsConflict: 86,
  WriteConflict: 112,
  ConflictingOperationInProgress: 117,
  TransactionTooOld: 225,
  NotImplemented: 238,
  NoSuchTransaction: 251,
  TransactionCommitted: 256,
  OperationNotSupportedInTransaction: 263,
  UnsupportedOpQueryCommand: 352,
  NotWritablePrimary: 10107,
  DuplicateKey: 11000,
  NotPrimaryNoSecondaryOk: 13435,
} as const;

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `Location${code}`;
}

/** A command failure as the server reports it: `{ok: 0, code, codeName, errmsg}` plus extra fields. */
export class CommandError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly extra: Document = {},
  ) {
    super(message);
  }
}

/** Anything thrown while running a command (mingo included) as the server's error document. */
export function errorReply(error: unknown): Document {
  if (error instanceof CommandError) {
    return { ok: 0, errmsg: error.message, code: error.code, codeName: codeName(error.code), ...error.extra };
  }
  // mingo rejects bad queries and updates by throwing plain Errors; a server answers BadValue.
  const message = error instanceof Error ? error.message : String(error);
  return { ok: 0, errmsg: message, code: Code.BadValue, codeName: codeName(Code.BadValue) };
}

// The retryable-writes specification's list, which is also what the server's isRetriableError() covers.
const RETRIABLE_CODES = new Set([6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);

/** Where a command ran, as far as the server's error labels care. */
export interface LabelContext {
  /** txnNumber and autocommit:false: a command of a multi-document transaction. */
  inTransaction: boolean;
  /** txnNumber without autocommit: a retryable write. */
  retryableWrite: boolean;
  commandName: string;
}

/**
 * The labels a mongod adds itself (ErrorLabelBuilder): TransientTransactionError for errors that leave a
 * transaction safe to re-run (on commit/abort, NoSuchTransaction only without a write concern error), and
 * RetryableWriteError for retriable codes on retryable writes and on commit/abort.
 */
export function serverLabels(context: LabelContext, code?: number, writeConcernCode?: number): string[] {
  const labels: string[] = [];
  const commitOrAbort =
    context.commandName === 'commitTransaction' || context.commandName === 'abortTransaction';
  if (context.inTransaction && code !== undefined) {
    const transient =
      code === 112 ||
      code === 24 ||
      code === 246 ||
      code === 239 ||
      (code === 251 && !(commitOrAbort && writeConcernCode !== undefined));
    if (transient) labels.push('TransientTransactionError');
  }
  if (context.retryableWrite || (context.inTransaction && commitOrAbort)) {
    const retriable =
      (code !== undefined && RETRIABLE_CODES.has(code)) ||
      (writeConcernCode !== undefined && RETRIABLE_CODES.has(writeConcernCode));
    if (retriable) labels.push('RetryableWriteError');
  }
  return labels;
}
