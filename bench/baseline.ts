import { type CommandStartedEvent, type Document, MongoClient, type ObjectId } from 'mongodb';
import { usernameKey } from '../src/plan/conflicts.js';
import type { CustomerRequest } from '../src/plan/resolve.js';
import { CUSTOMER_KIND, fieldRefs, type ReferenceMap, USERS } from '../src/plan/schema.js';
import { countingStore } from '../src/store/counting.js';
import { SnapshotStore } from '../src/store/snapshot.js';

/**
 * The same migration done the way hand-written scripts usually do it, to compare the engine with: for each
 * reference field, find the documents that hold the old id and update each one by _id. Same result as the
 * engine with --merge-conflicts (merged accounts re-pointed and marked, sub-accounts, jobs and invoices
 * re-pointed, sources deactivated), but one round trip per document.
 */

export interface Measured {
  /** Documents modified, summed over every update. */
  modified: number;
  /** Database commands (MongoDB) or store calls (snapshot) made by the migration itself. */
  commands: number;
  /** Wall time of the migration alone: opening and closing the store are not included. */
  seconds: number;
  /** The engine's journal chunks (each one insert, and on MongoDB one getMore to read its ids). */
  chunks?: number;
}

/** All a hand-written script uses. */
interface ScriptDb {
  find(collection: string, filter: Document): AsyncIterable<Document>;
  /** Returns the number of documents modified (0 or 1). */
  updateOne(collection: string, _id: ObjectId, update: Document): Promise<number>;
}

async function migrateByHand(db: ScriptDb, request: CustomerRequest, map: ReferenceMap): Promise<number> {
  const now = new Date();
  const customers: Document[] = [];
  for await (const customer of db.find(USERS, {
    username: { $in: [...request.sources, request.destination] },
    kind: CUSTOMER_KIND,
  })) {
    customers.push(customer);
  }
  const destination = customers.find((customer) => customer.username === request.destination);
  const sources = request.sources.map((name) => customers.find((customer) => customer.username === name));
  if (!destination || sources.some((source) => source === undefined)) {
    throw new Error(
      `baseline: customers ${[...request.sources, request.destination].join(', ')} not all found`,
    );
  }
  const sourceIds = (sources as Document[]).map((source) => source._id as ObjectId);
  const destinationId = destination._id as ObjectId;

  // Same-named accounts of the same kind: the source's one is merged into the destination's.
  const destinationAccounts = new Map<string, Document>();
  const sourceAccounts: Document[] = [];
  for await (const account of db.find(USERS, {
    parent: { $in: [destinationId, ...sourceIds] },
    kind: { $ne: CUSTOMER_KIND },
    markedDelete: { $ne: true },
  })) {
    if (destinationId.equals(account.parent)) destinationAccounts.set(usernameKey(account.username), account);
    else sourceAccounts.push(account);
  }

  let modified = 0;
  const repoint = async (collection: string, field: string, from: unknown, to: ObjectId) => {
    for await (const document of db.find(collection, { [field]: from })) {
      modified += await db.updateOne(collection, document._id, { $set: { [field]: to } });
    }
  };

  for (const account of sourceAccounts) {
    const existing = destinationAccounts.get(usernameKey(account.username));
    if (!existing || existing.kind !== account.kind) continue;
    for (const ref of fieldRefs(map.accountRefs, map)) {
      await repoint(ref.collection, ref.field, account._id, existing._id);
    }
    modified += await db.updateOne(USERS, account._id, {
      $set: { markedDelete: true, active: false, mergedInto: existing._id, mergedAt: now },
    });
  }
  for (const ref of fieldRefs(map.customerRefs, map)) {
    await repoint(ref.collection, ref.field, { $in: sourceIds }, destinationId);
  }
  for (const sourceId of sourceIds) {
    modified += await db.updateOne(USERS, sourceId, {
      $set: { active: false, markedDelete: true, migratedTo: destinationId, migratedAt: now },
    });
  }
  // The engine records each migration on its destination; the script does the same, so both modify as much.
  modified += await db.updateOne(USERS, destinationId, { $push: { migrationsReceived: 'baseline' } });
  return modified;
}

/**
 * On a snapshot file. TransactionStore has only updateMany, so each per-document update is an updateMany
 * filtered on one _id: the per-document round trip. It runs in one transaction, as the store requires.
 */
export async function baselineSnapshot(
  file: string,
  request: CustomerRequest,
  map: ReferenceMap,
): Promise<Measured> {
  const counting = countingStore(await SnapshotStore.open(file));
  try {
    const started = performance.now();
    const modified = await counting.store.transaction((tx) =>
      migrateByHand(
        {
          find: (collection, filter) => tx.find(collection, filter),
          updateOne: async (collection, _id, update) =>
            (await tx.updateMany(collection, { _id }, update)).modified,
        },
        request,
        map,
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    return { modified, commands: counting.counts().total, seconds };
  } finally {
    await counting.store.close();
  }
}

/**
 * On MongoDB, with the driver directly and no transaction, as such scripts do. Commands are counted from
 * the client's commandStarted events (getMore batches included).
 */
export async function baselineMongo(
  uri: string,
  request: CustomerRequest,
  map: ReferenceMap,
): Promise<Measured> {
  const client = new MongoClient(uri, { monitorCommands: true, serverSelectionTimeoutMS: 5000 });
  let commands = 0;
  client.on('commandStarted', (_event: CommandStartedEvent) => {
    commands += 1;
  });
  try {
    await client.connect();
    const db = client.db();
    const before = commands;
    const started = performance.now();
    const modified = await migrateByHand(
      {
        find: (collection, filter) => db.collection(collection).find(filter),
        updateOne: async (collection, _id, update) =>
          (await db.collection(collection).updateOne({ _id }, update)).modifiedCount,
      },
      request,
      map,
    );
    const seconds = (performance.now() - started) / 1000;
    return { modified, commands: commands - before, seconds };
  } finally {
    await client.close();
  }
}
