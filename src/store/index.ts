import { type MongoOptions, MongoReadOnlyStore, MongoStore } from './mongo.js';
import { SnapshotReadOnlyStore, SnapshotStore } from './snapshot.js';
import type { ReadOnlyStore, Store, StoreTarget } from './types.js';

export type { ReadOnlyStore, Store, StoreTarget } from './types.js';

/** For preview: the object returned has no method that writes. */
export function openReadOnlyStore(target: StoreTarget, options: MongoOptions = {}): Promise<ReadOnlyStore> {
  return target.kind === 'snapshot'
    ? SnapshotReadOnlyStore.open(target.file)
    : MongoReadOnlyStore.open(target.uri, options);
}

export function openStore(target: StoreTarget, options: MongoOptions = {}): Promise<Store> {
  return target.kind === 'snapshot' ? SnapshotStore.open(target.file) : MongoStore.open(target.uri, options);
}
