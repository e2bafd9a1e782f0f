import type { Document } from 'mongodb';

export type { Document };

export interface FindOptions {
  projection?: Document;
  sort?: Record<string, 1 | -1>;
}

export interface UpdateResult {
  matched: number;
  modified: number;
}

/** What resolve and scan need: reads only. */
export interface ReadStore {
  find(collection: string, filter: Document, options?: FindOptions): AsyncIterable<Document>;
  count(collection: string, filter: Document): Promise<number>;
}

/** A store bound to one transaction: the only place an update can be made. */
export interface TransactionStore extends ReadStore {
  updateMany(collection: string, filter: Document, update: Document): Promise<UpdateResult>;
}

/**
 * What preview gets. Its implementations have no write method at all, so a preview cannot write even by
 * mistake: there is nothing to call.
 */
export interface ReadOnlyStore extends ReadStore {
  /** Where the data lives, safe to print (no password). */
  readonly description: string;
  close(): Promise<void>;
}

/** What execute gets: reads, plus one way to write, all-or-nothing. */
export interface Store extends ReadOnlyStore {
  /** Throws a RuntimeError when this store cannot run a transaction (a standalone mongod). */
  assertTransactional(): Promise<void>;
  /**
   * Runs `work` in one transaction and commits when it resolves; rolls back when it throws. `work` may run
   * more than once (MongoDB retries transient errors), so it must re-read everything it relies on.
   */
  transaction<T>(work: (tx: TransactionStore) => Promise<T>): Promise<T>;
}

export type StoreTarget = { kind: 'mongodb'; uri: string } | { kind: 'snapshot'; file: string };

/** Reads a whole result into memory: only for results bounded by accounts, never by jobs or invoices. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
