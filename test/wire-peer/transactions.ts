import type { Binary, Document, Timestamp } from 'mongodb';
import { DocumentWriter } from './document-writer.js';
import { Code, CommandError } from './errors.js';
import type { Replication } from './replication.js';
import type { Storage } from './storage.js';

/** Commands a mongod runs inside a multi-document transaction; any other is refused there (263). */
const TRANSACTION_COMMANDS = new Set([
  'find',
  'getMore',
  'killCursors',
  'aggregate',
  'distinct',
  'insert',
  'update',
  'delete',
  'commitTransaction',
  'abortTransaction',
]);
const RETRYABLE_WRITE_COMMANDS = new Set(['insert', 'update', 'delete']);
/** Commands that accept readConcern snapshot outside a transaction (MongoDB 5.0+). */
const SNAPSHOT_READ_COMMANDS = new Set(['find', 'aggregate', 'distinct']);
/**
 * Driver 7.5 sends a snapshot session's readConcern on every command, getMore included; mongod accepts it there
 * and ignores it (a cursor reads at the time of the command that opened it).
 */
const CURSOR_COMMANDS = new Set(['getMore', 'killCursors']);
const TRANSACTION_READ_CONCERNS = new Set(['local', 'majority', 'snapshot']);
/** The wire version of MongoDB 5.0, the first with snapshot reads outside transactions. */
const SNAPSHOT_READS_WIRE_VERSION = 13;

type TransactionState = 'open' | 'committed' | 'aborted';

export class Transaction {
  state: TransactionState = 'open';
  readonly writer: DocumentWriter;
  /** Cursors opened inside the transaction: they die with it, as on a server. */
  readonly cursorIds = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly txnNumber: number,
    storage: Storage,
    readTs: number,
    lifetimeMs: number,
    onExpired: (transaction: Transaction) => void,
  ) {
    this.writer = new DocumentWriter(storage, readTs);
    // transactionLifetimeLimitSeconds: the server aborts a transaction left open this long.
    this.timer = setTimeout(() => onExpired(this), lifetimeMs);
    this.timer.unref();
  }

  /** Returns the commit's cluster time (undefined for an abort, or a commit that changed nothing). */
  end(state: 'committed' | 'aborted'): number | undefined {
    clearTimeout(this.timer);
    this.state = state;
    if (state === 'committed') return this.writer.commit();
    this.writer.abort();
    return undefined;
  }
}

interface SessionState {
  /** The lsid, for messages. */
  id: string;
  /** The highest txnNumber seen on the session (transaction or retryable write). */
  txnNumber: number;
  transaction?: Transaction;
  /** The reply of the last retryable write, answered again when the driver retries it. */
  lastRetryableWrite?: { txnNumber: number; reply: Document };
}

/** What the session fields of a command resolved to. */
export interface SessionContext {
  transaction?: Transaction;
  /** A retryable write: the reply to remember, or the one to answer again. */
  retryableWrite?: { remember(reply: Document): void; previous?: Document };
  /** Reads outside a transaction: the time they read at. */
  readTs: number;
  /** readConcern snapshot outside a transaction: the reply carries atClusterTime. */
  snapshotRead: boolean;
  /**
   * A read outside a transaction that waits for the commits at or before this time to be applied before it
   * runs (afterClusterTime, or a snapshot read); see Storage.applied.
   */
  waitsFor?: number;
  /** A read outside a transaction at local or majority read concern: commits still being applied are hidden. */
  hidesApplying?: boolean;
}

export interface SessionOptions {
  /** Standalone servers refuse transaction numbers (IllegalOperation). */
  standalone: boolean;
  maxWireVersion: number;
  transactionLifetimeMs: number;
  /** minSnapshotHistoryWindowInSeconds: a read at an older atClusterTime is SnapshotTooOld (239). */
  snapshotHistoryWindowSeconds: number;
  /** How long a committed transaction stays invisible to reads that do not wait for it (0: none). */
  commitVisibilityLagMs: number;
}

export function lsidOf(command: Document): string | undefined {
  const id = (command.lsid as { id?: Binary } | undefined)?.id;
  return id ? id.toString('hex') : undefined;
}

/**
 * Server sessions and the transaction state machine as a mongod enforces it: which fields each command of a
 * transaction must and must not carry, which transaction numbers are too old or unknown, what a committed or
 * aborted transaction answers.
 */
export class Sessions {
  private readonly sessions = new Map<string, SessionState>();

  constructor(
    private readonly storage: Storage,
    private readonly replication: Replication,
    private readonly options: () => SessionOptions,
    /** Told when a transaction commits or aborts (its cursors close with it). */
    private readonly onEnd: (transaction: Transaction) => void,
  ) {}

  resolve(name: string, command: Document): SessionContext {
    const lsid = lsidOf(command);
    const { txnNumber, autocommit } = command;
    if (txnNumber !== undefined && this.options().standalone) {
      throw new CommandError(
        Code.IllegalOperation,
        'Transaction numbers are only allowed on a replica set member or mongos',
      );
    }
    if (autocommit !== undefined) return this.inTransaction(name, command, lsid);
    if (txnNumber !== undefined) return this.retryableWrite(name, command, lsid);
    return this.readTime(name, command);
  }

  private readTime(name: string, command: Document): SessionContext {
    const readConcern = command.readConcern as
      | { level?: string; atClusterTime?: Timestamp; afterClusterTime?: Timestamp }
      | undefined;
    if (readConcern?.level !== 'snapshot') {
      if (readConcern?.atClusterTime) {
        throw new CommandError(
          Code.InvalidOptions,
          'atClusterTime is only allowed with readConcern level snapshot',
        );
      }
      // Majority reads read at the majority commit point. A causally consistent read waits for what it must
      // see; any other read takes what is applied now.
      const majority = readConcern?.level === 'majority';
      const after = readConcern?.afterClusterTime;
      return {
        readTs: majority ? this.replication.commitPoint : this.storage.now,
        snapshotRead: false,
        hidesApplying: true,
        ...(after ? { waitsFor: this.storage.timeOf(after) } : {}),
      };
    }
    if (this.options().maxWireVersion < SNAPSHOT_READS_WIRE_VERSION) {
      throw new CommandError(
        Code.InvalidOptions,
        'readConcern level snapshot is only valid in multi-statement transactions',
      );
    }
    if (CURSOR_COMMANDS.has(name)) return { readTs: this.storage.now, snapshotRead: false };
    if (!SNAPSHOT_READ_COMMANDS.has(name)) {
      throw new CommandError(
        Code.InvalidOptions,
        `Command ${name} does not support readConcern level snapshot`,
      );
    }
    const readTs = this.readAt(readConcern.atClusterTime);
    return { readTs, snapshotRead: true, waitsFor: readTs };
  }

  /**
   * The storage time of a snapshot read at `atClusterTime`; without one, the majority commit point (snapshot
   * read concern reads majority-committed data). A time not reached yet is refused.
   */
  private readAt(atClusterTime: Timestamp | undefined): number {
    if (!atClusterTime) return this.replication.readPoint();
    const at = this.storage.timeOf(atClusterTime);
    if (at > this.storage.now) {
      throw new CommandError(246, 'atClusterTime is later than the latest cluster time of this peer');
    }
    const oldest = this.replication.oldestReadable(this.options().snapshotHistoryWindowSeconds);
    if (this.storage.madeAt(at) < oldest) {
      throw new CommandError(
        239,
        `Read timestamp Timestamp(${atClusterTime.high}, ${atClusterTime.low}) is older than the oldest available timestamp.`,
      );
    }
    return at;
  }

  private session(lsid: string | undefined): SessionState {
    if (lsid === undefined)
      throw new CommandError(Code.InvalidOptions, 'Transaction numbers need a session (lsid)');
    let session = this.sessions.get(lsid);
    if (!session) {
      session = { id: lsid, txnNumber: -1 };
      this.sessions.set(lsid, session);
    }
    return session;
  }

  private inTransaction(name: string, command: Document, lsid: string | undefined): SessionContext {
    if (command.autocommit !== false) {
      throw new CommandError(Code.InvalidOptions, 'Specifying autocommit=true is not allowed.');
    }
    if (command.txnNumber === undefined) {
      throw new CommandError(
        Code.InvalidOptions,
        "'autocommit' field requires a transaction number to also be specified",
      );
    }
    const txnNumber = Number(command.txnNumber);
    const session = this.session(lsid);
    if (!TRANSACTION_COMMANDS.has(name)) {
      throw new CommandError(
        Code.OperationNotSupportedInTransaction,
        `Cannot run '${name}' in a multi-document transaction.`,
      );
    }
    const commitOrAbort = name === 'commitTransaction' || name === 'abortTransaction';
    if (command.writeConcern !== undefined && !commitOrAbort) {
      throw new CommandError(
        Code.InvalidOptions,
        'writeConcern is not allowed within a multi-statement transaction',
      );
    }
    if (txnNumber < session.txnNumber) {
      throw new CommandError(
        Code.TransactionTooOld,
        `Cannot ${command.startTransaction ? 'start' : 'continue'} transaction ${txnNumber} on session ${session.id} because a newer transaction ${session.txnNumber} has already started.`,
      );
    }
    if (command.startTransaction === true) return this.start(session, txnNumber, command);

    const transaction = session.transaction;
    if (!transaction || transaction.txnNumber !== txnNumber) {
      throw new CommandError(
        Code.NoSuchTransaction,
        `Given transaction number ${txnNumber} does not match any in-progress transactions. The active transaction number is ${session.txnNumber}`,
      );
    }
    if (command.readConcern !== undefined) {
      throw new CommandError(
        Code.InvalidOptions,
        'Only the first command in a transaction may specify a readConcern',
      );
    }
    if (transaction.state === 'aborted') {
      throw new CommandError(
        Code.NoSuchTransaction,
        `Transaction with { txnNumber: ${txnNumber} } has been aborted.`,
      );
    }
    if (transaction.state === 'committed' && name !== 'commitTransaction') {
      throw new CommandError(
        Code.TransactionCommitted,
        `Transaction with { txnNumber: ${txnNumber} } has been committed.`,
      );
    }
    return { transaction, readTs: transaction.writer.readTs, snapshotRead: false };
  }

  private start(session: SessionState, txnNumber: number, command: Document): SessionContext {
    if (txnNumber === session.txnNumber) {
      throw new CommandError(
        Code.ConflictingOperationInProgress,
        'Only servers in a sharded cluster can start a new transaction at the active transaction number',
      );
    }
    const readConcern = (command.readConcern ?? {}) as { level?: string; atClusterTime?: Timestamp };
    if (readConcern.level !== undefined && !TRANSACTION_READ_CONCERNS.has(readConcern.level)) {
      throw new CommandError(
        Code.InvalidOptions,
        `The readConcern level must be either 'local' (default), 'majority' or 'snapshot' in order to run in a transaction`,
      );
    }
    if (readConcern.atClusterTime && readConcern.level !== 'snapshot') {
      throw new CommandError(
        Code.InvalidOptions,
        'atClusterTime is only allowed with readConcern level snapshot',
      );
    }
    // Snapshot and majority read concerns read majority-committed data; local reads the latest.
    const committed = readConcern.level === 'snapshot' || readConcern.level === 'majority';
    const readTs = committed ? this.readAt(readConcern.atClusterTime) : this.storage.now;
    this.abortOpen(session);
    session.txnNumber = txnNumber;
    const transaction = new Transaction(
      txnNumber,
      this.storage,
      readTs,
      this.options().transactionLifetimeMs,
      (expired) => {
        if (expired.state === 'open') this.end(expired, 'aborted');
      },
    );
    session.transaction = transaction;
    return { transaction, readTs, snapshotRead: false };
  }

  private retryableWrite(name: string, command: Document, lsid: string | undefined): SessionContext {
    if (!RETRYABLE_WRITE_COMMANDS.has(name)) {
      throw new CommandError(
        Code.InvalidOptions,
        `txnNumber may only be provided for multi-document transactions and retryable write commands. autocommit:false was not provided, and ${name} is not a retryable write command.`,
      );
    }
    const txnNumber = Number(command.txnNumber);
    const session = this.session(lsid);
    if (txnNumber < session.txnNumber) {
      throw new CommandError(
        Code.TransactionTooOld,
        `Retryable write with txnNumber ${txnNumber} is prohibited on session ${session.id} because a newer retryable write with txnNumber ${session.txnNumber} has already started on this session.`,
      );
    }
    if (txnNumber > session.txnNumber) this.abortOpen(session);
    session.txnNumber = txnNumber;
    const previous =
      session.lastRetryableWrite?.txnNumber === txnNumber ? session.lastRetryableWrite.reply : undefined;
    return {
      readTs: this.storage.now,
      snapshotRead: false,
      retryableWrite: {
        previous,
        remember: (reply) => {
          session.lastRetryableWrite = { txnNumber, reply };
        },
      },
    };
  }

  private abortOpen(session: SessionState): void {
    if (session.transaction?.state === 'open') this.end(session.transaction, 'aborted');
  }

  end(transaction: Transaction, state: 'committed' | 'aborted'): void {
    const committedAt = transaction.end(state);
    if (committedAt !== undefined) this.storage.applyLater(committedAt, this.options().commitVisibilityLagMs);
    this.onEnd(transaction);
  }

  /** endSessions / killSessions: their open transactions are aborted and the sessions forgotten. */
  forget(lsids: string[] | 'all'): void {
    const ids = lsids === 'all' ? [...this.sessions.keys()] : lsids;
    for (const id of ids) {
      const session = this.sessions.get(id);
      if (session) this.abortOpen(session);
      this.sessions.delete(id);
    }
  }

  /** A failover: every open transaction is lost. Sessions stay, as they would on a new primary. */
  abortAll(): void {
    for (const session of this.sessions.values()) this.abortOpen(session);
  }
}
