import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';
import {
  BSON,
  type ClientSession,
  type CollationOptions,
  type CommandFailedEvent,
  type CommandStartedEvent,
  type CommandSucceededEvent,
  type Db,
  MongoClient,
  MongoError,
  MongoErrorLabel,
  MongoNetworkError,
  MongoServerSelectionError,
  MongoWriteConcernError,
  type ReadConcernLike,
  type ServerDescriptionChangedEvent,
} from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import {
  CommitUnknownError,
  errorMessage,
  InterruptedError,
  RuntimeError,
  UsageError,
} from '../shared/errors.js';
import { redactText, redactUri } from '../shared/secrets.js';
import type {
  AggregateOptions,
  Document,
  FindOptions,
  IndexInfo,
  ReadOnlyStore,
  ServerFacts,
  Store,
  TransactionOptions,
  TransactionStore,
  Update,
  UpdateResult,
} from './types.js';

const logCommands = createDebug('agm:mongo_enhanced');
const log = createDebug('agm:migrate-customer-data');

const DEFAULT_DATABASE = 'agmission';
/**
 * The first contact is bounded tightly so that a wrong host fails fast; once connected, operations wait up to
 * the driver's 30 s for a server, which covers a replica-set election (about 10 s or more).
 */
const FIRST_CONTACT_MS = 5_000;
const OPERATION_SERVER_SELECTION_MS = 30_000;
/** Bounds the commit alone; the work is bounded by the server's transactionLifetimeLimitSeconds. */
const MAX_COMMIT_TIME_MS = 30_000;
/**
 * withTransaction re-runs the work on transient errors for up to 120 s, and an oversized transaction often
 * fails with WriteConflict (transient) rather than TransactionTooLargeForCache: three attempts are enough for
 * a passing conflict, and stop a transaction that cannot fit from holding its locks for minutes.
 */
const MAX_TRANSACTION_ATTEMPTS = 3;
/** A killSessions sent on an interruption must not keep the operator waiting. */
const KILL_SESSION_MS = 5_000;
const SETTLE_ATTEMPTS = 5;

export interface MongoOptions {
  /** Called once for every command sent to the server (including getMore, commit and retries). */
  onCommand?: (event: CommandStartedEvent) => void;
  /**
   * Read everything from one point in time on the primary (preview): a snapshot session from MongoDB 5.0, a
   * read-only snapshot transaction before that.
   */
  pointInTime?: boolean;
}

/** What hello (or isMaster, before 4.2.10) says about the server. */
export interface ServerRole {
  kind: 'primary' | 'secondary' | 'standalone' | 'mongos';
  setName?: string;
  maxWireVersion: number;
}

/** MongoDB 5.0: snapshot reads outside transactions. */
const SNAPSHOT_SESSION_WIRE_VERSION = 13;

interface ReadSettings {
  session?: ClientSession;
  readConcern?: ReadConcernLike;
  readPreference?: 'primary';
}

class MongoReads {
  constructor(
    protected readonly db: Db,
    protected readonly reads: ReadSettings,
  ) {}

  async *find(collection: string, filter: Document, options: FindOptions = {}): AsyncIterable<Document> {
    // Documents arrive raw and are read here with their numbers as Int32/Double/Long objects, as on the snapshot
    // back end, so a before-image keeps each number's BSON type (a double 10.0 read as a JS number would come
    // back as an int). Only the documents: the driver reads error replies itself, with plain numeric codes.
    const cursor = this.db.collection(collection).find(filter, { ...options, ...this.reads, raw: true });
    for await (const raw of cursor as unknown as AsyncIterable<Uint8Array>) {
      yield BSON.deserialize(raw, { promoteValues: false });
    }
  }

  count(collection: string, filter: Document): Promise<number> {
    return this.db.collection(collection).countDocuments(filter, this.reads);
  }

  aggregate(
    collection: string,
    pipeline: Document[],
    options: AggregateOptions = {},
  ): AsyncIterable<Document> {
    const collation = options.collation as CollationOptions | undefined;
    return this.db
      .collection(collection)
      .aggregate(pipeline, { ...(collation ? { collation } : {}), ...this.reads });
  }
}

class MongoTransaction extends MongoReads implements TransactionStore {
  async updateMany(collection: string, filter: Document, update: Update): Promise<UpdateResult> {
    const result = await this.db.collection(collection).updateMany(filter, update, this.reads);
    return { matched: result.matchedCount, modified: result.modifiedCount };
  }

  async replaceOne(collection: string, filter: Document, replacement: Document): Promise<UpdateResult> {
    const result = await this.db.collection(collection).replaceOne(filter, replacement, this.reads);
    return { matched: result.matchedCount, modified: result.modifiedCount };
  }

  async insertMany(collection: string, documents: Document[]): Promise<void> {
    if (documents.length > 0) await this.db.collection(collection).insertMany(documents, this.reads);
  }
}

interface Connection {
  client: MongoClient;
  db: Db;
  description: string;
  role: ServerRole;
}

export class MongoReadOnlyStore extends MongoReads implements ReadOnlyStore {
  protected constructor(
    protected readonly connection: Connection,
    reads: ReadSettings,
  ) {
    super(connection.db, reads);
  }

  get description(): string {
    return this.connection.description;
  }

  // Outside a transaction an error is the operator's to read: said plainly, as every other one is. (Inside
  // one it must stay a driver error, whose labels tell withTransaction whether to retry.)
  override find(collection: string, filter: Document, options: FindOptions = {}): AsyncIterable<Document> {
    return explainedStream(super.find(collection, filter, options), this.description);
  }

  override count(collection: string, filter: Document): Promise<number> {
    return super.count(collection, filter).catch((error) => {
      throw explainMongoError(error, this.description);
    });
  }

  override aggregate(
    collection: string,
    pipeline: Document[],
    options: AggregateOptions = {},
  ): AsyncIterable<Document> {
    return explainedStream(super.aggregate(collection, pipeline, options), this.description);
  }

  static async open(uri: string, options: MongoOptions = {}): Promise<MongoReadOnlyStore> {
    const connection = await connect(uri, options);
    // verify --scan-all reads everything once: the URI's read preference may send that to a secondary.
    if (!options.pointInTime) return new MongoReadOnlyStore(connection, {});
    try {
      return new MongoReadOnlyStore(connection, pointInTimeReads(connection));
    } catch (error) {
      await connection.client.close().catch(() => {});
      throw error;
    }
  }

  async listCollections(): Promise<string[]> {
    const collections = await this.db
      .listCollections({}, { nameOnly: true })
      .toArray()
      .catch((error) => {
        throw explainMongoError(error, this.description);
      });
    return collections.map((collection) => collection.name).filter((name) => !name.startsWith('system.'));
  }

  /** Outside any transaction: listIndexes is not allowed inside one. */
  async inspect(collections: string[]): Promise<ServerFacts> {
    const facts: ServerFacts = { indexes: {}, shardKeys: {}, unknown: [] };
    const indexes = facts.indexes as Record<string, IndexInfo[]>;
    for (const name of collections) {
      try {
        indexes[name] = (await this.db.collection(name).listIndexes().toArray()) as IndexInfo[];
      } catch (error) {
        if (codeOf(error) === 26) indexes[name] = [];
        else facts.unknown.push(`indexes of ${name} (${firstLine(errorMessage(error))})`);
      }
    }
    if (this.connection.role.kind === 'mongos') {
      const namespaces = collections.map((name) => `${this.db.databaseName}.${name}`);
      const sharded = this.connection.client
        .db('config')
        .collection('collections')
        .find({ _id: { $in: namespaces } as never, dropped: { $ne: true } });
      for await (const entry of sharded) {
        facts.shardKeys[String(entry._id).slice(this.db.databaseName.length + 1)] = entry.key;
      }
    }
    try {
      const status = await this.db.admin().command({ serverStatus: 1 });
      const bytes = status.wiredTiger?.cache?.['maximum bytes configured'];
      if (typeof bytes === 'number' && bytes > 0) facts.cacheBytes = bytes;
      else facts.unknown.push('WiredTiger cache size (serverStatus does not report it)');
    } catch (error) {
      facts.unknown.push(`WiredTiger cache size (serverStatus: ${firstLine(errorMessage(error))})`);
    }
    return facts;
  }

  async close(): Promise<void> {
    const { session } = this.reads;
    if (session?.inTransaction()) await session.abortTransaction().catch(() => {});
    await session?.endSession().catch(() => {});
    await this.connection.client.close();
  }
}

async function* explainedStream(
  source: AsyncIterable<Document>,
  description: string,
): AsyncIterable<Document> {
  try {
    yield* source;
  } catch (error) {
    throw explainMongoError(error, description);
  }
}

/**
 * One point in time on the primary. A snapshot session (5.0+) reads without a transaction; older servers get
 * a transaction that only reads and is aborted at close.
 */
function pointInTimeReads({ client, role }: Connection): ReadSettings {
  if (role.maxWireVersion >= SNAPSHOT_SESSION_WIRE_VERSION && role.kind !== 'standalone') {
    return { session: client.startSession({ snapshot: true }), readPreference: 'primary' };
  }
  const session = client.startSession();
  session.startTransaction({ readConcern: { level: 'snapshot' }, readPreference: 'primary' });
  return { session };
}

export class MongoStore extends MongoReadOnlyStore implements Store {
  static override async open(uri: string, options: MongoOptions = {}): Promise<MongoStore> {
    // Outside the transaction, read what is majority-committed on the primary: the state a later reader sees.
    // In a causally consistent session, so that reads after a commit wait for it (see followCommit).
    const connection = await connect(uri, options);
    return new MongoStore(connection, {
      session: connection.client.startSession({ causalConsistency: true }),
      readPreference: 'primary',
      readConcern: { level: 'majority' },
    });
  }

  /** The driver does not check this before a transaction; the server would fail its first operation. */
  async assertTransactional(): Promise<void> {
    const role = await roleOf(this.db).catch((error) => {
      throw explainMongoError(error, this.description);
    });
    const where = this.description;
    if (role.kind === 'primary' || role.kind === 'mongos') return;
    if (role.kind === 'secondary') {
      throw new RuntimeError(
        `${where} is not the primary of replica set ${role.setName}; connect with the replica set URI (replicaSet=${role.setName}) so writes go to the primary`,
      );
    }
    throw new RuntimeError(
      `${where} is a standalone server and cannot run transactions; use a replica set or mongos (a one-member replica set will do)`,
    );
  }

  /** Explicit creation is not allowed in a transaction on older servers, implicit creation not across shards. */
  async ensureCollections(names: string[]): Promise<void> {
    const existing = new Set(await this.listCollections());
    for (const name of names.filter((candidate) => !existing.has(candidate))) {
      try {
        await this.db.createCollection(name, { writeConcern: { w: 'majority' } });
      } catch (error) {
        if (codeOf(error) !== 48) throw explainMongoError(error, this.description);
      }
    }
  }

  async transaction<T>(
    work: (tx: TransactionStore) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const { signal } = options;
    const session = this.connection.client.startSession();
    const state = {
      attempts: 0,
      finished: false,
      result: undefined as T | undefined,
      lastError: undefined as unknown,
    };
    // An interrupted run must not leave its transaction holding locks until the server's lifetime limit.
    const onAbort = () => {
      if (!state.finished) void this.killSession(session);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await session.withTransaction(
        async () => {
          state.attempts += 1;
          state.finished = false;
          if (signal?.aborted) throw interruption(signal);
          if (state.attempts > MAX_TRANSACTION_ATTEMPTS) throw gaveUp(state.attempts - 1, state.lastError);
          if (state.attempts > 1) options.onRetry?.(state.attempts);
          try {
            state.result = await work(new MongoTransaction(this.db, { session }));
          } catch (error) {
            if (signal?.aborted) throw interruption(signal);
            state.lastError = error;
            throw error;
          }
          state.finished = true;
          options.onCommit?.();
          return state.result;
        },
        {
          readConcern: { level: 'snapshot' },
          writeConcern: { w: 'majority' },
          readPreference: 'primary',
          maxCommitTimeMS: MAX_COMMIT_TIME_MS,
        },
      );
    } catch (error) {
      if (state.finished && !provenNotCommitted(error)) {
        throw new CommitUnknownError(
          `The commit was sent to ${this.description} but its outcome is unknown (${firstLine(errorMessage(error))})`,
          state.result,
          { cause: error },
        );
      }
      throw explainMongoError(error, this.description);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.followCommit(session);
      await session.endSession().catch(() => {});
    }
  }

  /**
   * The store's later reads carry afterClusterTime from the transaction's last reply (its commit): a multi-shard
   * commit is still being applied on some shards when it returns, and reads that do not wait for it see the data
   * as it was before (MongoDB, "Outside Reads During Commit"). The post-commit recount must not.
   */
  private followCommit(transaction: ClientSession): void {
    const reads = this.reads.session;
    if (!reads) return;
    if (transaction.clusterTime) reads.advanceClusterTime(transaction.clusterTime);
    if (transaction.operationTime) reads.advanceOperationTime(transaction.operationTime);
  }

  /**
   * Settles an unknown commit for good: insert a fence with the journal entry's own _id. If the insert succeeds,
   * the transaction did not commit and never can (its insert of that _id would now fail); if it hits a
   * duplicate key, the transaction committed, and a majority read on the primary then confirms it is durable.
   */
  async settle(collection: string, id: string, fence: Document): Promise<'committed' | 'not-committed'> {
    const journal = this.db.collection<{ _id: string; type?: string }>(collection);
    for (let attempt = 1; ; attempt += 1) {
      try {
        await journal.insertOne({ ...fence, _id: id }, { writeConcern: { w: 'majority' } });
        return 'not-committed';
      } catch (error) {
        if (codeOf(error) === 11000) break;
        // A transaction still holding that _id makes the insert wait or conflict: ask again.
        if (attempt >= SETTLE_ATTEMPTS || !isTransient(error))
          throw explainMongoError(error, this.description);
        await sleep(500 * attempt);
      }
    }
    for (let attempt = 1; attempt <= SETTLE_ATTEMPTS; attempt += 1) {
      const found = await journal.findOne(
        { _id: id },
        { readConcern: { level: 'majority' }, readPreference: 'primary' },
      );
      if (found && found.type !== 'fence') return 'committed';
      await sleep(500 * attempt);
    }
    throw new RuntimeError(
      `the journal entry ${id} exists on the primary but is not yet majority-committed (it could still be rolled back by a failover)`,
    );
  }

  private async killSession(session: ClientSession): Promise<void> {
    const kill = this.db.admin().command({ killSessions: [session.id] });
    const timer = sleep(KILL_SESSION_MS).then(() => {
      throw new Error(`no answer within ${KILL_SESSION_MS / 1000} s`);
    });
    try {
      await Promise.race([kill, timer]);
      log('transaction of the interrupted run killed on the server');
    } catch (error) {
      log('killSessions failed: %s', errorMessage(error));
    }
  }
}

function interruption(signal: AbortSignal): InterruptedError {
  return new InterruptedError(
    `Interrupted (${String(signal.reason)}) before the commit: the transaction was aborted, nothing was committed`,
  );
}

function gaveUp(attempts: number, lastError: unknown): RuntimeError {
  const last = lastError === undefined ? 'its commit was refused' : firstLine(errorMessage(lastError));
  return new RuntimeError(
    `MongoDB aborted the transaction ${attempts} times (last: ${last}); nothing was committed. It conflicts with other writes or is too large: migrate fewer sources per run, run it when the data is quiet, or raise the server's transactionLifetimeLimitSeconds`,
    { cause: lastError },
  );
}

/** The server said the commit did not happen: it aborted the transaction (labelled transient). */
function provenNotCommitted(error: unknown): boolean {
  return (
    error instanceof MongoError &&
    error.hasErrorLabel(MongoErrorLabel.TransientTransactionError) &&
    !error.hasErrorLabel(MongoErrorLabel.UnknownTransactionCommitResult)
  );
}

function isTransient(error: unknown): boolean {
  return (
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    (error instanceof MongoError &&
      (error.hasErrorLabel(MongoErrorLabel.TransientTransactionError) ||
        error.hasErrorLabel(MongoErrorLabel.RetryableWriteError) ||
        codeOf(error) === 112))
  );
}

function codeOf(error: unknown): number | undefined {
  return error instanceof MongoError && typeof error.code === 'number' ? error.code : undefined;
}

/** hello, or isMaster on servers older than 4.2.10 (which answer CommandNotFound). */
async function roleOf(db: Db): Promise<ServerRole> {
  let reply: Document;
  try {
    reply = await db.admin().command({ hello: 1 });
  } catch (error) {
    if (codeOf(error) !== 59) throw error;
    reply = await db.admin().command({ isMaster: 1 });
  }
  const maxWireVersion = Number(reply.maxWireVersion ?? 0);
  if (reply.msg === 'isdbgrid') return { kind: 'mongos', maxWireVersion };
  if (typeof reply.setName !== 'string') return { kind: 'standalone', maxWireVersion };
  const writable = reply.isWritablePrimary === true || reply.ismaster === true;
  return { kind: writable ? 'primary' : 'secondary', setName: reply.setName, maxWireVersion };
}

/** Where a URI points, as it may be shown: hosts and database, never credentials. */
export function parseMongoUri(uri: string) {
  let parsed: ConnectionString;
  try {
    parsed = new ConnectionString(uri);
  } catch (error) {
    throw new UsageError(
      `Invalid MongoDB URI ${redactUri(uri)}: ${redactText(firstLine(errorMessage(error)))}; check --uri or MONGODB_URI (percent-encode special characters such as @ / : in the password)`,
      { cause: error },
    );
  }
  const databaseName = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || DEFAULT_DATABASE;
  return { parsed, databaseName, description: `MongoDB ${parsed.hosts.join(',')}/${databaseName}` };
}

function uriOption(parsed: ConnectionString, name: string): number | undefined {
  for (const [key, value] of parsed.searchParams) {
    if (key.toLowerCase() === name.toLowerCase()) return Number(value);
  }
  return undefined;
}

async function connect(uri: string, options: MongoOptions): Promise<Connection> {
  const { parsed, databaseName, description } = parseMongoUri(uri);
  const selectionInUri = uriOption(parsed, 'serverSelectionTimeoutMS');
  const monitor = logCommands.enabled || options.onCommand !== undefined;
  let client: MongoClient;
  try {
    client = new MongoClient(uri, {
      appName: 'agm-migrate-customer-data',
      monitorCommands: monitor,
      serverSelectionTimeoutMS: selectionInUri ?? OPERATION_SERVER_SELECTION_MS,
    });
  } catch (error) {
    throw new UsageError(
      `Invalid MongoDB URI ${redactUri(uri)}: ${redactText(firstLine(errorMessage(error)))}; check --uri or MONGODB_URI`,
      { cause: error },
    );
  }
  if (monitor) watchCommands(client, options.onCommand);
  try {
    await firstContact(client, selectionInUri ?? FIRST_CONTACT_MS, description);
    const db = client.db(databaseName);
    return { client, db, description, role: await roleOf(db) };
  } catch (error) {
    await client.close().catch(() => {});
    throw explainMongoError(error, description);
  }
}

const UNRESOLVED = /ENOTFOUND|EAI_AGAIN|EAI_NONAME/;

/**
 * The first contact fails fast, and says why: a host name that does not resolve (an input error) is told apart
 * from a server that does not answer. The driver's own server-selection errors name the cause only at its
 * (longer) timeout, so the monitoring events say which hosts failed and how.
 */
async function firstContact(client: MongoClient, limitMs: number, description: string): Promise<void> {
  const failures = new Map<string, string>();
  const secondaries = new Set<string>();
  const onChange = (event: ServerDescriptionChangedEvent) => {
    const failure = event.newDescription.error;
    if (failure) failures.set(event.address, failure.message);
    if (event.newDescription.type === 'RSSecondary') secondaries.add(event.newDescription.setName ?? '');
  };
  client.on('serverDescriptionChanged', onChange);
  const connecting = client.connect();
  connecting.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unreachable(description, limitMs, failures, secondaries)), limitMs);
  });
  try {
    await Promise.race([connecting, deadline]);
  } catch (error) {
    // An SRV record that does not resolve fails before any server is tried.
    if (UNRESOLVED.test(errorMessage(error)) && !(error instanceof MongoError)) {
      throw new UsageError(
        `Cannot resolve the SRV record of ${description} (${firstLine(errorMessage(error))}); check the host name in --uri or MONGODB_URI`,
        { cause: error },
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    client.off('serverDescriptionChanged', onChange);
  }
}

function unreachable(
  description: string,
  limitMs: number,
  failures: Map<string, string>,
  secondaries: Set<string>,
): Error {
  const unresolved = [...failures.entries()].find(([, message]) => UNRESOLVED.test(message));
  if (unresolved) return unresolvedHost(unresolved[0], description);
  const [setName] = secondaries;
  if (setName !== undefined) return noPrimary(setName, description);
  const why = [...failures.values()][0];
  return new RuntimeError(
    `Cannot reach ${description} within ${limitMs / 1000} s${why ? ` (${firstLine(why)})` : ''}; check --uri or MONGODB_URI and that the server is running`,
  );
}

function noPrimary(setName: string, description: string): RuntimeError {
  return new RuntimeError(
    `Replica set ${setName} of ${description} has no primary (an election may be in progress, or the URI lists only secondaries); retry in a minute, or connect with the whole replica set`,
  );
}

function unresolvedHost(address: string, description: string): UsageError {
  return new UsageError(
    `Cannot resolve host ${address} of ${description}; check the host name (through an ssh tunnel or a proxy, add directConnection=true to the URI)`,
  );
}

function watchCommands(client: MongoClient, onCommand: MongoOptions['onCommand']) {
  client.on('commandStarted', (event: CommandStartedEvent) => {
    onCommand?.(event);
    const target = event.command[event.commandName];
    logCommands(
      '-> %s %s%s (request %d)',
      event.commandName,
      event.databaseName,
      typeof target === 'string' ? `.${target}` : '',
      event.requestId,
    );
  });
  client.on('commandSucceeded', (event: CommandSucceededEvent) =>
    logCommands('<- %s ok in %d ms (request %d)', event.commandName, event.duration, event.requestId),
  );
  client.on('commandFailed', (event: CommandFailedEvent) =>
    logCommands(
      '<- %s FAILED in %d ms (request %d): %s',
      event.commandName,
      event.duration,
      event.requestId,
      event.failure.message,
    ),
  );
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

/** Why server selection failed, in the operator's terms (a host name that does not resolve is an input error). */
function selectionProblem(error: MongoServerSelectionError, description: string): Error {
  const reason = error.reason;
  const servers = reason ? [...reason.servers.values()] : [];
  const unresolved = servers.find((server) => UNRESOLVED.test(String(server.error?.message ?? '')));
  if (unresolved) return unresolvedHost(unresolved.address, description);
  // With replicaSet= the topology says "no primary" even when no member answered: only a member that did
  // answer, as a secondary, makes it a missing primary rather than an unreachable server.
  const answered = servers.some((server) => ['RSSecondary', 'RSArbiter', 'RSOther'].includes(server.type));
  if (reason?.type === 'ReplicaSetNoPrimary' && answered) return noPrimary(reason.setName ?? '', description);
  return new RuntimeError(
    `Cannot reach ${description} (${firstLine(error.message)}); check --uri or MONGODB_URI and that the server is running`,
    { cause: error },
  );
}

/**
 * Say what happened in the operator's terms instead of showing the server's error. Every error reaching this
 * point arrived before a commit was sent, so "nothing was committed" is known.
 */
function explainMongoError(error: unknown, description: string): unknown {
  if (!(error instanceof MongoError)) return error;
  const plain = (message: string) => new RuntimeError(message, { cause: error });
  if (error instanceof MongoServerSelectionError) return selectionProblem(error, description);
  switch (codeOf(error)) {
    case 20:
      return plain(`${description} cannot run transactions; use a replica set or mongos`);
    case 290:
      return plain(
        `The transaction exceeded MongoDB's time limit (transactionLifetimeLimitSeconds, 60 s by default) and was aborted; nothing was committed. Migrate fewer source customers at a time, or index the reference fields (see --preview)`,
      );
    case 251:
      return plain(
        `The server aborted the transaction (its lifetime limit, a failover or a restart); nothing was committed. Run --preview and try again`,
      );
    case 50:
      return plain(
        `An operation exceeded its time limit (maxTimeMS) on ${description}; nothing was committed`,
      );
    case 388:
      return plain(
        `The transaction was too large for the server's cache and was aborted; nothing was committed. Migrate fewer source customers at a time`,
      );
    case 11000:
      return plain(
        `An update would violate a unique index (${firstLine(error.message)}); nothing was committed. Run --preview: it lists the unique indexes a migration would violate`,
      );
    case 18:
    case 13:
      return plain(
        `${description} refused the credentials or the operation (${firstLine(error.message)}); check the URI's user and its roles`,
      );
  }
  if (error instanceof MongoWriteConcernError) {
    return plain(`MongoDB could not confirm a write on ${description} (${firstLine(error.message)})`);
  }
  return plain(`MongoDB error on ${description}: ${firstLine(error.message)}`);
}
