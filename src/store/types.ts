import type { Document } from 'mongodb';

export type { Document };

export interface FindOptions {
  projection?: Document;
  sort?: Record<string, 1 | -1>;
  limit?: number;
  /** Documents per round trip: bounds the client's memory when a result is streamed. */
  batchSize?: number;
}

export interface UpdateResult {
  matched: number;
  modified: number;
}

/** An operator update (`{ $set: ... }`) or an aggregation-pipeline update (`[{ $set: ... }]`). */
export type Update = Document | Document[];

/** What resolve and scan need: reads only. */
export interface ReadStore {
  find(collection: string, filter: Document, options?: FindOptions): AsyncIterable<Document>;
  count(collection: string, filter: Document): Promise<number>;
  aggregate(collection: string, pipeline: Document[], options?: AggregateOptions): AsyncIterable<Document>;
}

export interface AggregateOptions {
  /** Compare strings as an index with this collation does (the unique-index check). */
  collation?: Document;
}

/** A store bound to one transaction: the only place data can be changed. */
export interface TransactionStore extends ReadStore {
  updateMany(collection: string, filter: Document, update: Update): Promise<UpdateResult>;
  replaceOne(collection: string, filter: Document, replacement: Document): Promise<UpdateResult>;
  insertMany(collection: string, documents: Document[]): Promise<void>;
}

/** An index as the server lists it (the fields the tool's checks read). */
export interface IndexInfo {
  name: string;
  key: Record<string, unknown>;
  unique?: boolean;
  sparse?: boolean;
  partialFilterExpression?: Document;
  collation?: Document;
}

/** A collection's size as the server reports it ($collStats storageStats). */
export interface CollectionSize {
  count: number;
  /** The average BSON size of a document, in bytes. */
  avgObjSize: number;
  /** Bytes of each index (all its entries), by index name. */
  indexSizes: Record<string, number>;
}

/**
 * The WiredTiger cache and the eviction triggers a transaction's uncommitted changes must stay under. A
 * trigger is a percentage of the cache (1 to 100) or a number of bytes (above 100); an updates trigger of 0 is
 * WiredTiger's default, half the dirty trigger.
 */
export interface CacheFacts {
  sizeBytes: number;
  /** What the running workload has already dirtied (serverStatus), when reported. */
  dirtyBytes?: number;
  updatesBytes?: number;
  dirtyTrigger: number;
  updatesTrigger: number;
  /** Where the triggers come from: WiredTiger's defaults, or the configuration string that sets them. */
  triggerSource: string;
}

/** How long the store lets a commit, and settling a commit whose answer was lost, take: stated before a run. */
export interface CommitLimits {
  /** The commit's own cap (maxCommitTimeMS): the commit and its wait for a majority. */
  commitMs: number;
  /** How long the commit waits for a majority to confirm it (w: majority, wtimeout). */
  majorityWaitMs: number;
  /** Settling an unknown commit, all attempts together. */
  settleMs: number;
}

/**
 * What the server says about itself and the mapped collections, read outside any transaction (listIndexes
 * is not allowed inside one). A snapshot file has no indexes, shards, cache or limits: it says so.
 */
export interface ServerFacts {
  /** Indexes per collection; undefined when the back end has none to report (a snapshot). */
  indexes?: Record<string, IndexInfo[]>;
  /** Shard keys of sharded collections (mongos only). */
  shardKeys: Record<string, Record<string, unknown>>;
  /** The WiredTiger cache, when serverStatus allows reading it. */
  cache?: CacheFacts;
  /** transactionLifetimeLimitSeconds, when getParameter allows reading it. */
  transactionLifetimeSeconds?: number;
  /** transactionTooLargeForCacheThreshold (6.2+): decides how a cache abort is reported. */
  tooLargeForCacheThreshold?: number;
  /** minSnapshotHistoryWindowInSeconds (5.0+): how long one snapshot of the preview stays readable. */
  snapshotWindowSeconds?: number;
  /** Collection sizes ($collStats), by collection. */
  sizes?: Record<string, CollectionSize>;
  /** The store's own bounds on committing. */
  commit?: CommitLimits;
  /** Facts the store could not read, and why (a user without the role for serverStatus, say). */
  unknown: string[];
}

/**
 * What preview and verify get. Its implementations have no write method at all, so they cannot write even
 * by mistake: there is nothing to call.
 */
export interface ReadOnlyStore extends ReadStore {
  /** Where the data lives, safe to print (no password). */
  readonly description: string;
  listCollections(): Promise<string[]>;
  inspect(collections: string[]): Promise<ServerFacts>;
  close(): Promise<void>;
}

export interface TransactionOptions {
  /** Aborted by an interruption (Ctrl-C, SIGTERM, SIGHUP): the transaction is aborted on the server too. */
  signal?: AbortSignal;
  /** Called when MongoDB asked to run the work again (attempt 2, 3, ...). */
  onRetry?: (attempt: number) => void;
  /** Called when the work is done and the commit is about to be sent: from here its outcome may be unknown. */
  onCommit?: () => void;
}

/** What execute and rollback get: reads, plus one way to change data, all-or-nothing. */
export interface Store extends ReadOnlyStore {
  /** Throws a RuntimeError when this store cannot run a transaction (a standalone mongod). */
  assertTransactional(): Promise<void>;
  /** Creates missing collections before a transaction inserts into them (not allowed inside one everywhere). */
  ensureCollections(names: string[]): Promise<void>;
  /**
   * Runs `work` in one transaction and commits when it resolves; rolls back when it throws. `work` may run
   * more than once (MongoDB retries transient errors), so it must re-read everything it relies on.
   * A failure whose outcome cannot be known (the commit may have happened) is a CommitUnknownError.
   */
  transaction<T>(work: (tx: TransactionStore) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * After a CommitUnknownError: did a transaction commit the document `_id` into `collection`? Answers from
   * the primary with majority read concern, after making sure that no transaction can still commit it.
   * Bounded as a whole; throws when it cannot tell within that bound, or when `signal` aborts it.
   */
  settle(collection: string, id: string, fence: Document, options: SettleOptions): Promise<Settled>;
}

export type Settled = 'committed' | 'not-committed';

export interface SettleOptions {
  /** Says what each attempt does and how long it waits at most. */
  report: (line: string) => void;
  /** An interruption: stop asking, the outcome stays unknown. */
  signal?: AbortSignal;
}

export type StoreTarget =
  | { kind: 'mongodb'; uri: string }
  | { kind: 'snapshot'; file: string }
  /** A mongodump folder (issue 14): read as streams, changed by rewriting the collection files it changes. */
  | { kind: 'dump'; dir: string };

/** Reads a whole result into memory: only for results bounded by accounts, never by jobs or invoices. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
