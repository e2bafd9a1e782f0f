import { redactUri } from '../shared/secrets.js';
import { type DumpOptions, DumpReadOnlyStore, DumpStore, describeDump } from './dump.js';
import { type MongoOptions, MongoReadOnlyStore, MongoStore, parseMongoUri } from './mongo.js';
import { describeSnapshot, type SnapshotOptions, SnapshotReadOnlyStore, SnapshotStore } from './snapshot.js';
import type { ReadOnlyStore, Store, StoreTarget } from './types.js';

export type { ReadOnlyStore, Store, StoreTarget } from './types.js';

/** Each back end takes the options meant for it and ignores the others. */
export type OpenOptions = MongoOptions & SnapshotOptions & DumpOptions;

/**
 * For preview and verify: the object returned has no method that writes. With `pointInTime`, every read sees
 * one moment of the data (a snapshot file and a dump always do).
 */
export function openReadOnlyStore(target: StoreTarget, options: OpenOptions = {}): Promise<ReadOnlyStore> {
  switch (target.kind) {
    case 'snapshot':
      return SnapshotReadOnlyStore.open(target.file, options);
    case 'dump':
      return DumpReadOnlyStore.open(target.dir, options);
    case 'mongodb':
      return MongoReadOnlyStore.open(target.uri, options);
  }
}

export function openStore(target: StoreTarget, options: OpenOptions = {}): Promise<Store> {
  switch (target.kind) {
    case 'snapshot':
      return SnapshotStore.open(target.file, options);
    case 'dump':
      return DumpStore.open(target.dir, options);
    case 'mongodb':
      return MongoStore.open(target.uri, options);
  }
}

/** The store's description without opening it (for records of runs that never reached it). */
export function describeTarget(target: StoreTarget): string {
  if (target.kind === 'snapshot') return describeSnapshot(target.file);
  if (target.kind === 'dump') return describeDump(target.dir);
  try {
    return parseMongoUri(target.uri).description;
  } catch {
    return redactUri(target.uri);
  }
}
