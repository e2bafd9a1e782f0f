import { type Document, MongoClient } from 'mongodb';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTarget, TransactionStore } from '../../src/store/types.js';

/** The writes an application makes; the same calls on every back end. */
export interface AppWrites {
  insertMany(collection: string, documents: Document[]): Promise<unknown>;
  updateMany(collection: string, filter: Document, update: Document): Promise<unknown>;
}

/**
 * An application writing while the migration runs, as `openStore` for runCli. Through a server (the wire peer,
 * MongoDB) a second client makes the writes while the migration's transaction is open, at its first update:
 * truly concurrent, unseen by its snapshot. A snapshot file is locked by the run from its first read to its
 * rename, so nobody else can write it meanwhile; there the writes land right after the commit, before anything
 * the run reads afterwards, which is what the run sees either way: documents its transaction did not.
 */
export function applicationWriting(
  write: (app: AppWrites) => Promise<unknown>,
): (target: StoreTarget) => Promise<Store> {
  return async (target) => {
    const store = await openStore(target);
    const wrapped: Store = Object.create(store);
    let done = false;
    wrapped.transaction = async (work, options) => {
      if (target.kind !== 'mongodb') {
        const result = await store.transaction(work, options);
        if (!done) {
          done = true;
          await store.transaction((tx) => write(tx));
        }
        return result;
      }
      return store.transaction((tx) => {
        const tapped: TransactionStore = Object.create(tx);
        tapped.updateMany = async (...args) => {
          if (!done) {
            done = true;
            await viaClient(target.uri, write);
          }
          return tx.updateMany(...args);
        };
        return work(tapped);
      }, options);
    };
    return wrapped;
  };
}

async function viaClient(uri: string, write: (app: AppWrites) => Promise<unknown>): Promise<void> {
  const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 5_000 });
  try {
    const db = client.db();
    await write({
      insertMany: (collection, documents) => db.collection(collection).insertMany(documents),
      updateMany: (collection, filter, update) => db.collection(collection).updateMany(filter, update),
    });
  } finally {
    await client.close();
  }
}
