import type { Document, FindOptions, ReadStore, Store, TransactionStore, UpdateResult } from './types.js';

export interface StoreCounts {
  find: number;
  count: number;
  updateMany: number;
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
  const tally = { find: 0, count: 0, updateMany: 0 };
  const reads = (target: ReadStore): ReadStore => ({
    find(collection: string, filter: Document, options?: FindOptions): AsyncIterable<Document> {
      tally.find += 1;
      return target.find(collection, filter, options);
    },
    count(collection: string, filter: Document): Promise<number> {
      tally.count += 1;
      return target.count(collection, filter);
    },
  });
  const counted: Store = {
    ...reads(store),
    description: store.description,
    close: () => store.close(),
    assertTransactional: () => store.assertTransactional(),
    transaction: <T>(work: (tx: TransactionStore) => Promise<T>): Promise<T> =>
      store.transaction((tx) =>
        work({
          ...reads(tx),
          updateMany(collection: string, filter: Document, update: Document): Promise<UpdateResult> {
            tally.updateMany += 1;
            return tx.updateMany(collection, filter, update);
          },
        }),
      ),
  };
  return {
    store: counted,
    counts: () => ({ ...tally, total: tally.find + tally.count + tally.updateMany }),
  };
}
