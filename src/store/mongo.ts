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
  CacheFacts,
  CollectionSize,
  CommitLimits,
  Document,
  FindOptions,
  IndexInfo,
  ReadOnlyStore,
  ServerFacts,
  Settled,
  SettleOptions,
  Store,
  TransactionOptions,
  TransactionStore,
  Update,
  UpdateResult,
} from './types.js';

const logCommands = createDebug('agm:mongo_enhanced');
const log = createDebug('agm:migrate-customer-data');

const DEFAULT_DATABASE = 'agmission';
/** The driver's appName unless the URI gives one. */
const APP_NAME = 'agm-migrate-customer-data';
/**
 * The first contact is bounded tightly so that a wrong host fails fast; once connected, operations wait up to
 * the driver's 30 s for a server, which covers a replica-set election (about 10 s or more).
 */
const FIRST_CONTACT_MS = 5_000;
const OPERATION_SERVER_SELECTION_MS = 30_000;
/**
 * A transaction re-runs on transient errors, and an oversized transaction often fails with WriteConflict
 * (transient) rather than TransactionTooLargeForCache: three attempts are enough for a passing conflict, and
 * stop a transaction that cannot fit from holding its locks for minutes (withTransaction alone retries 120 s).
 */
const MAX_TRANSACTION_ATTEMPTS = 3;
/** A killSessions or abort sent on an interruption must not keep the operator waiting. */
const KILL_SESSION_MS = 5_000;
/** Below this, a settle attempt would be too short to learn anything: the bound is reached. */
const MIN_WAIT_MS = 50;

/** How long committing, and settling a commit whose answer was lost, may take. */
export interface MongoLimits extends CommitLimits {
  /** One fence insert: its w:majority wtimeout and maxTimeMS. */
  fenceWaitMs: number;
  /** One confirming read on the primary (maxTimeMS). */
  confirmMs: number;
  /** Added to a server-side bound for the client's own limit, for a server that does not answer at all. */
  clientGraceMs: number;
  /** The pause between two settle attempts. */
  pauseMs: number;
}

/**
 * Sized for a large commit with a lagging secondary: a commit writes the transaction's oplog entries (up to
 * 60 s of work), and a majority must then apply them, behind whatever lag a secondary already has. The
 * commit waits up to 90 s for that majority (w: majority, wtimeout), within its own 120 s cap (maxCommitTimeMS,
 * which also bounds that wait on the server: past it the answer is a MaxTimeMSExpired write-concern error, and
 * the driver does not retry it). Settling an unknown commit then takes at most 120 s more, each fence waiting
 * at most 30 s for a majority.
 */
export const DEFAULT_LIMITS: MongoLimits = {
  commitMs: 120_000,
  majorityWaitMs: 90_000,
  settleMs: 120_000,
  fenceWaitMs: 30_000,
  confirmMs: 10_000,
  clientGraceMs: 5_000,
  pauseMs: 2_000,
};

export interface MongoOptions {
  /** Called once for every command sent to the server (including getMore, commit and retries). */
  onCommand?: (event: CommandStartedEvent) => void;
  /**
   * Read everything from one point in time on the primary (preview): a snapshot session from MongoDB 5.0, a
   * read-only snapshot transaction before that.
   */
  pointInTime?: boolean;
  /** Shorter bounds for tests; DEFAULT_LIMITS otherwise. */
  limits?: Partial<MongoLimits>;
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
  limits: MongoLimits;
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

  /**
   * Outside any transaction (listIndexes and $collStats are not allowed inside one). Each fact the server
   * does not give (a user without clusterMonitor, a mongos that has no cache of its own) is said, not guessed.
   */
  async inspect(collections: string[]): Promise<ServerFacts> {
    const { limits } = this.connection;
    const facts: ServerFacts = {
      indexes: {},
      shardKeys: {},
      sizes: {},
      commit: { commitMs: limits.commitMs, majorityWaitMs: limits.majorityWaitMs, settleMs: limits.settleMs },
      unknown: [],
    };
    const indexes = facts.indexes as Record<string, IndexInfo[]>;
    const sizes = facts.sizes as Record<string, CollectionSize>;
    for (const name of collections) {
      try {
        indexes[name] = (await this.db.collection(name).listIndexes().toArray()) as IndexInfo[];
      } catch (error) {
        if (codeOf(error) === 26) indexes[name] = [];
        else facts.unknown.push(`indexes of ${name} (${firstLine(errorMessage(error))})`);
      }
      try {
        sizes[name] = await this.collectionSize(name);
      } catch (error) {
        facts.unknown.push(`the size of ${name} ($collStats: ${firstLine(errorMessage(error))})`);
      }
    }
    if (this.connection.role.kind === 'mongos') await this.readShardKeys(collections, facts);
    const parameters = await this.readParameters(facts);
    await this.readCache(facts, parameters);
    return facts;
  }

  /** $collStats (one document per shard on mongos); a collection that does not exist is empty. */
  private async collectionSize(name: string): Promise<CollectionSize> {
    const size: CollectionSize = { count: 0, avgObjSize: 0, indexSizes: {} };
    let bytes = 0;
    try {
      const stats = this.db.collection(name).aggregate([{ $collStats: { storageStats: {} } }]);
      for await (const { storageStats } of stats) {
        size.count += Number(storageStats?.count ?? 0);
        bytes += Number(storageStats?.size ?? 0);
        for (const [index, indexBytes] of Object.entries(storageStats?.indexSizes ?? {})) {
          size.indexSizes[index] = (size.indexSizes[index] ?? 0) + Number(indexBytes);
        }
      }
    } catch (error) {
      if (codeOf(error) !== 26) throw error;
    }
    size.avgObjSize = size.count > 0 ? bytes / size.count : 0;
    return size;
  }

  /** A user who may not read config.collections gets a warning that these checks were skipped, not an error. */
  private async readShardKeys(collections: string[], facts: ServerFacts): Promise<void> {
    const namespaces = collections.map((name) => `${this.db.databaseName}.${name}`);
    try {
      const sharded = this.connection.client
        .db('config')
        .collection('collections')
        .find({ _id: { $in: namespaces } as never, dropped: { $ne: true } });
      for await (const entry of sharded) {
        facts.shardKeys[String(entry._id).slice(this.db.databaseName.length + 1)] = entry.key;
      }
    } catch (error) {
      facts.unknown.push(
        `the shard keys (config.collections: ${firstLine(errorMessage(error))}), so the shard-key checks (reference fields, the journal collection) were skipped`,
      );
    }
  }

  /** serverStatus: the cache and what the workload has dirtied; the triggers from the WiredTiger configuration. */
  private async readCache(facts: ServerFacts, parameters: Document): Promise<void> {
    let cache: Document | undefined;
    try {
      cache = (await this.db.admin().command({ serverStatus: 1 })).wiredTiger?.cache;
    } catch (error) {
      facts.unknown.push(`the WiredTiger cache (serverStatus: ${firstLine(errorMessage(error))})`);
      return;
    }
    const sizeBytes = cache?.['maximum bytes configured'];
    if (typeof sizeBytes !== 'number' || sizeBytes <= 0) {
      const why =
        this.connection.role.kind === 'mongos'
          ? 'a mongos has no cache of its own: the shards have'
          : 'serverStatus does not report it';
      facts.unknown.push(`the WiredTiger cache (${why})`);
      return;
    }
    const reported = (field: string) => (typeof cache?.[field] === 'number' ? cache[field] : undefined);
    const dirtyBytes = reported('tracked dirty bytes in the cache');
    const updatesBytes = reported('bytes allocated for updates');
    facts.cache = {
      sizeBytes,
      ...(dirtyBytes === undefined ? {} : { dirtyBytes }),
      ...(updatesBytes === undefined ? {} : { updatesBytes }),
      ...(await this.evictionTriggers(parameters.wiredTigerEngineRuntimeConfig)),
    };
  }

  /**
   * eviction_dirty_trigger (default 20) and eviction_updates_trigger (default 0: half the dirty trigger), as set
   * at run time (wiredTigerEngineRuntimeConfig) or at startup (storage.wiredTiger.engineConfig.configString).
   */
  private async evictionTriggers(
    runtime: unknown,
  ): Promise<Pick<CacheFacts, 'dirtyTrigger' | 'updatesTrigger' | 'triggerSource'>> {
    const startup = await this.db
      .admin()
      .command({ getCmdLineOpts: 1 })
      .then((options) => options.parsed?.storage?.wiredTiger?.engineConfig?.configString)
      .catch(() => undefined);
    const triggers = { dirtyTrigger: 20, updatesTrigger: 0, triggerSource: "WiredTiger's defaults" };
    // The runtime configuration is applied over the startup one.
    for (const [source, config] of [
      ['the startup configString', startup],
      ['wiredTigerEngineRuntimeConfig', runtime],
    ] as const) {
      if (typeof config !== 'string') continue;
      const dirty = configNumber(config, 'eviction_dirty_trigger');
      const updates = configNumber(config, 'eviction_updates_trigger');
      if (dirty !== undefined) triggers.dirtyTrigger = dirty;
      if (updates !== undefined) triggers.updatesTrigger = updates;
      if (dirty !== undefined || updates !== undefined) triggers.triggerSource = `${source} "${config}"`;
    }
    return triggers;
  }

  /** The limits that are server parameters (a mongos has none of them: they are its shards'). */
  private async readParameters(facts: ServerFacts): Promise<Document> {
    let parameters: Document;
    try {
      parameters = await this.db.admin().command({ getParameter: '*' });
    } catch (error) {
      facts.unknown.push(
        `the server's transaction limits (getParameter: ${firstLine(errorMessage(error))}), so 60 s is assumed for transactionLifetimeLimitSeconds`,
      );
      return {};
    }
    const number = (name: string) => (typeof parameters[name] === 'number' ? parameters[name] : undefined);
    const lifetime = number('transactionLifetimeLimitSeconds');
    if (lifetime !== undefined) facts.transactionLifetimeSeconds = lifetime;
    else {
      facts.unknown.push(
        `transactionLifetimeLimitSeconds (${this.connection.role.kind === 'mongos' ? "it is the shards' parameter, not the mongos's" : 'getParameter does not report it'}), so its default of 60 s is assumed`,
      );
    }
    const threshold = number('transactionTooLargeForCacheThreshold');
    if (threshold !== undefined) facts.tooLargeForCacheThreshold = threshold;
    const window = number('minSnapshotHistoryWindowInSeconds');
    if (window !== undefined) facts.snapshotWindowSeconds = window;
    return parameters;
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

  /**
   * The work runs in a transaction, again on transient errors (at most 3 attempts), and is committed once:
   * a commit whose answer is lost is not retried blindly (the driver retries one dropped connection itself)
   * but reported as unknown, for settle(). A stop requested while the work runs is honoured right before the
   * commit would be sent: the transaction is aborted and killed on the server, and that is awaited.
   */
  async transaction<T>(
    work: (tx: TransactionStore) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const { signal } = options;
    const { limits } = this.connection;
    const session = this.connection.client.startSession();
    let committing = false;
    let killed: Promise<void> | undefined;
    // An interrupted run must not leave its transaction holding locks until the server's lifetime limit.
    const onAbort = () => {
      if (!committing) killed ??= this.killSession(session);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let lastError: unknown;
    try {
      for (let attempt = 1; ; attempt += 1) {
        if (signal?.aborted) throw interruption(signal);
        if (attempt > MAX_TRANSACTION_ATTEMPTS) throw gaveUp(attempt - 1, lastError);
        if (attempt > 1) options.onRetry?.(attempt);
        session.startTransaction({
          readConcern: { level: 'snapshot' },
          writeConcern: { w: 'majority', wtimeoutMS: limits.majorityWaitMs },
          readPreference: 'primary',
          maxCommitTimeMS: limits.commitMs,
        });
        let result: T;
        try {
          result = await work(new MongoTransaction(this.db, { session }));
          // The last safe point: nothing is awaited between this check and sending the commit.
          if (signal?.aborted) throw interruption(signal);
        } catch (error) {
          await bounded(session.abortTransaction(), KILL_SESSION_MS);
          await killed;
          if (signal?.aborted) throw interruption(signal);
          if (!isTransientTransactionError(error)) throw explainMongoError(error, this.description);
          lastError = error;
          continue;
        }
        committing = true;
        options.onCommit?.();
        try {
          await session.commitTransaction();
          return result;
        } catch (error) {
          if (!provenNotCommitted(error)) {
            throw new CommitUnknownError(
              `The commit was sent to ${this.description} but its outcome is unknown (${firstLine(errorMessage(error))})`,
              result,
              { cause: error },
            );
          }
          committing = false;
          lastError = error;
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await killed;
      this.followCommit(session);
      await bounded(session.endSession(), KILL_SESSION_MS);
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
   * Settles an unknown commit for good: insert a fence with the journal entry's own _id (w: majority). If it
   * lands, the transaction did not commit and never can (its insert of that _id would now fail). Otherwise a
   * majority read on the primary decides: the run's journal document means it committed, the fence (an earlier
   * attempt of ours that landed) means it did not, nothing yet means ask again. Every attempt is bounded on the
   * server (wtimeout, maxTimeMS) and in the client, and says what it does; all of them together take at most
   * `settleMs`, after which the outcome stays unknown.
   */
  async settle(collection: string, id: string, fence: Document, options: SettleOptions): Promise<Settled> {
    const { limits } = this.connection;
    const { report, signal } = options;
    const journal = this.db.collection<{ _id: string; type?: string }>(collection);
    const deadline = Date.now() + limits.settleMs;
    report(
      `  settling: a fence (journal ${id} written as type "fence", w: majority), then a majority read on the primary; at most ${seconds(limits.settleMs)} in all`,
    );
    let last = 'no attempt finished';
    // Every wait, the client's own limits included, fits in what is left of the one bound.
    const budget = () => deadline - Date.now() - limits.clientGraceMs;
    const halfGrace = Math.floor(limits.clientGraceMs / 2);
    for (let attempt = 1; ; attempt += 1) {
      if (budget() < MIN_WAIT_MS) {
        throw new RuntimeError(`no answer within ${seconds(limits.settleMs)} (last: ${last})`);
      }
      const wait = Math.min(limits.fenceWaitMs, budget());
      report(`  attempt ${attempt}: writing the fence (waits at most ${seconds(wait)} for a majority)`);
      let look = false;
      try {
        // maxTimeMS a little above the wtimeout: a majority that does not come answers WriteConcernFailed.
        await withinLimit(
          journal.insertOne(
            { ...fence, _id: id },
            { writeConcern: { w: 'majority', wtimeoutMS: wait }, maxTimeMS: wait + halfGrace },
          ),
          wait + limits.clientGraceMs,
          signal,
        );
        report('  the fence is majority-committed: that journal entry can never be committed now');
        return 'not-committed';
      } catch (error) {
        if (signal?.aborted) throw interrupted(signal);
        const pattern = codeOf(error) === 11000 ? keyPatternOf(error) : undefined;
        if (pattern && Object.keys(pattern).join() !== '_id') {
          throw new RuntimeError(
            `the fence was refused by the unique index ${JSON.stringify(pattern)} of ${collection}, which says nothing about the commit (the journal collection must have no unique index but _id)`,
            { cause: error },
          );
        }
        if (codeOf(error) === 11000) {
          last = `journal ${id} already exists (the run's own entry, or a fence of an earlier attempt)`;
          look = true;
        } else if (error instanceof MongoWriteConcernError) {
          last = `the fence was written on the primary, but a majority did not confirm it (${firstLine(error.message)})`;
          look = true;
        } else {
          last = firstLine(errorMessage(error));
        }
      }
      if (look && budget() >= MIN_WAIT_MS) {
        const confirm = Math.min(limits.confirmMs, budget());
        report(
          `  attempt ${attempt}: ${last}; reading it on the primary (majority, at most ${seconds(confirm)})`,
        );
        try {
          const found = await withinLimit(
            journal.findOne(
              { _id: id },
              { readConcern: { level: 'majority' }, readPreference: 'primary', maxTimeMS: confirm },
            ),
            confirm + limits.clientGraceMs,
            signal,
          );
          if (found?.type === 'fence') {
            report('  the majority-committed document is the fence: nothing was committed');
            return 'not-committed';
          }
          if (found) return 'committed';
          last = `journal ${id} is not majority-committed yet (a failover could still undo it)`;
        } catch (error) {
          if (signal?.aborted) throw interrupted(signal);
          last = firstLine(errorMessage(error));
        }
      }
      const pause = Math.max(0, Math.min(limits.pauseMs, budget()));
      report(`  attempt ${attempt}: ${last}; asking again in ${seconds(pause)}`);
      await sleep(pause, undefined, { signal }).catch(() => {});
      if (signal?.aborted) throw interrupted(signal);
    }
  }

  private async killSession(session: ClientSession): Promise<void> {
    const kill = this.db.admin().command({ killSessions: [session.id] });
    try {
      await withinLimit(kill, KILL_SESSION_MS);
      log('transaction of the interrupted run killed on the server');
    } catch (error) {
      log('killSessions failed: %s', errorMessage(error));
    }
  }
}

/** Rejects when `promise` has not settled within `ms` (a server that does not answer), or `signal` aborts. */
function withinLimit<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {
  promise.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  let onAbort: () => void = () => {};
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${seconds(ms)}`)), ms);
    onAbort = () => reject(new Error('interrupted'));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, limit]).finally(() => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  });
}

/** Waits for `promise` at most `ms`, whatever it does: for clean-up that must not hold the operator. */
async function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  await withinLimit(promise, ms).catch(() => {});
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** `eviction_dirty_trigger=10` in a WiredTiger configuration string. */
function configNumber(config: string, name: string): number | undefined {
  const match = new RegExp(`(?:^|,)\\s*${name}\\s*=\\s*(\\d+)`).exec(config);
  return match ? Number(match[1]) : undefined;
}

function keyPatternOf(error: unknown): Document | undefined {
  const pattern = (error as { keyPattern?: unknown }).keyPattern;
  return typeof pattern === 'object' && pattern !== null ? (pattern as Document) : undefined;
}

function interrupted(signal: AbortSignal): InterruptedError {
  return new InterruptedError(`interrupted (${String(signal.reason)}) while asking`);
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

/** What the server or the driver labelled safe to run again from the start (a write conflict, a failover). */
function isTransientTransactionError(error: unknown): boolean {
  return error instanceof MongoError && error.hasErrorLabel(MongoErrorLabel.TransientTransactionError);
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

function uriText(parsed: ConnectionString, name: string): string | undefined {
  for (const [key, value] of parsed.searchParams) {
    if (key.toLowerCase() === name.toLowerCase()) return value;
  }
  return undefined;
}

function uriOption(parsed: ConnectionString, name: string): number | undefined {
  const value = uriText(parsed, name);
  return value === undefined ? undefined : Number(value);
}

async function connect(uri: string, options: MongoOptions): Promise<Connection> {
  const { parsed, databaseName, description } = parseMongoUri(uri);
  const selectionInUri = uriOption(parsed, 'serverSelectionTimeoutMS');
  const monitor = logCommands.enabled || options.onCommand !== undefined;
  let client: MongoClient;
  try {
    client = new MongoClient(uri, {
      // The URI's appName wins (the options object would override it): it is how a server's fail point, or
      // its log, tells this run's commands from everyone else's.
      ...(uriText(parsed, 'appName') === undefined ? { appName: APP_NAME } : {}),
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
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    return { client, db, description, role: await roleOf(db), limits };
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
  let refuse: (error: Error) => void = () => {};
  const onChange = (event: ServerDescriptionChangedEvent) => {
    const failure = event.newDescription.error;
    if (failure) failures.set(event.address, failure.message);
    if (event.newDescription.type === 'RSSecondary') secondaries.add(event.newDescription.setName ?? '');
    // The driver refuses a server older than 4.2 at its handshake, and would only say so at its timeout.
    const wire = failure ? TOO_OLD.exec(failure.message) : null;
    if (wire) refuse(tooOld(Number(wire[1]), event.address));
  };
  client.on('serverDescriptionChanged', onChange);
  const connecting = client.connect();
  connecting.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    refuse = reject;
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

const TOO_OLD = /reports maximum wire version (\d+), but this version of the Node\.js Driver requires/;
/** The MongoDB release of each wire version below 8 (MongoDB 4.2), the oldest driver 7 speaks to. */
const OLD_RELEASES = ['2.4', '2.4', '2.6', '3.0', '3.2', '3.4', '3.6', '4.0'];

/** An input error: this tool (its driver, and the transactions it needs) cannot work with that server. */
function tooOld(wire: number, address: string): UsageError {
  const release = OLD_RELEASES[wire] ?? `before 4.2 (wire version ${wire})`;
  return new UsageError(
    `MongoDB ${release} is too old: this tool needs 4.2 or later (${address} reports wire version ${wire}); upgrade the server, or run the migration against a 4.2+ copy`,
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
    case 239:
      return plain(
        `The reads took longer than ${description} keeps snapshot history (minSnapshotHistoryWindowInSeconds, 300 s by default), and MongoDB discarded the snapshot they read (SnapshotTooOld); nothing was written. Run it again at a quieter moment, or raise the window for the run: db.adminCommand({ setParameter: 1, minSnapshotHistoryWindowInSeconds: 900 }) (history costs cache: set it back afterwards)`,
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
