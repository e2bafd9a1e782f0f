import type {
  AggregateOptions,
  Document,
  FindOptions,
  ReadOnlyStore,
  ReadStore,
  Store,
  TransactionStore,
  Update,
} from './types.js';

export interface StoreCounts {
  reads: number;
  writes: number;
  total: number;
}

/**
 * Counts the calls made through a store, including those on the TransactionStore handed to `transaction`'s
 * callback. On MongoDB the commands are counted from the driver's `commandStarted` events (`onCommand`);
 * the snapshot back end has no driver to listen to, so the bench and the command-count test count its work
 * here, at the Store interface: one call is one command. It adds no method, so it cannot write any more
 * than the store it wraps.
 */
export function countingStore(store: Store): { store: Store; counts(): StoreCounts } {
  const { tally, reads, readOnly, counts } = tallies();
  const writes = (tx: TransactionStore): TransactionStore => ({
    ...reads(tx),
    updateMany(collection: string, filter: Document, update: Update) {
      tally.writes += 1;
      return tx.updateMany(collection, filter, update);
    },
    replaceOne(collection: string, filter: Document, replacement: Document) {
      tally.writes += 1;
      return tx.replaceOne(collection, filter, replacement);
    },
    insertMany(collection: string, documents: Document[]) {
      tally.writes += 1;
      return tx.insertMany(collection, documents);
    },
  });
  const counted: Store = {
    ...readOnly(store),
    assertTransactional: () => store.assertTransactional(),
    ensureCollections: (names) => store.ensureCollections(names),
    settle: (collection, id, fence, options) => store.settle(collection, id, fence, options),
    transaction: (work, options) => store.transaction((tx) => work(writes(tx)), options),
  };
  return { store: counted, counts };
}

/** The same count for a store that only reads (what preview, verify and rollback --preview get). */
export function countingReadOnlyStore(store: ReadOnlyStore): { store: ReadOnlyStore; counts(): StoreCounts } {
  const { readOnly, counts } = tallies();
  return { store: readOnly(store), counts };
}

function tallies() {
  const tally = { reads: 0, writes: 0 };
  const reads = (target: ReadStore): ReadStore => ({
    find(collection: string, filter: Document, options?: FindOptions) {
      tally.reads += 1;
      return target.find(collection, filter, options);
    },
    count(collection: string, filter: Document) {
      tally.reads += 1;
      return target.count(collection, filter);
    },
    aggregate(collection: string, pipeline: Document[], options?: AggregateOptions) {
      tally.reads += 1;
      return target.aggregate(collection, pipeline, options);
    },
  });
  const readOnly = (store: ReadOnlyStore): ReadOnlyStore => ({
    ...reads(store),
    description: store.description,
    listCollections: () => store.listCollections(),
    inspect: (collections) => store.inspect(collections),
    close: () => store.close(),
  });
  return {
    tally,
    reads,
    readOnly,
    counts: (): StoreCounts => ({ ...tally, total: tally.reads + tally.writes }),
  };
}
