import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BSON, type Db, type Document, ObjectId } from 'mongodb';
import { DEFAULT_REFERENCE_MAP } from '../src/plan/schema.js';
import { serializeSnapshot } from '../src/store/snapshot.js';

/**
 * A data set for the bench and the command-count test, built in memory: one destination customer, one
 * source customer with sub-accounts of kinds 2, 3, 5 and 9, N jobs and N invoices of the source pointing at
 * its clients and pilots, and an unrelated customer with jobs and invoices of its own that must not move.
 * One source client has the username of a destination client (same kind), so --merge-conflicts has an
 * account to merge and the account-reference steps run too. Ids are derived from counters: the same N gives
 * the same data.
 */

export const SOURCE_USERNAME = 'bench_source';
export const DESTINATION_USERNAME = 'bench_destination';
export const NOISE_USERNAME = 'bench_bystander';
/** The username both customers have a kind-3 client under. */
export const SHARED_CLIENT_USERNAME = 'bench_shared_client';

const INSERT_BATCH = 10_000;

export interface SeedOptions {
  /** Jobs of the unrelated customer (default: a tenth of N, at least 100); it also gets half as many invoices. */
  noiseJobs?: number;
  /** Give the destination a client with the username of one of the source's (default true). */
  conflict?: boolean;
  /** More same-named client pairs (no jobs of their own), so a migration merges 1 + this many accounts. */
  extraMerges?: number;
}

export interface Seed {
  n: number;
  sourceId: ObjectId;
  destinationId: ObjectId;
  noiseId: ObjectId;
  /** The source's client merged into the destination's (undefined without a conflict). */
  merge?: { loser: ObjectId; survivor: ObjectId };
  users: Document[];
  /** Generated on demand so a large seed can go to MongoDB batch by batch. */
  jobs(): Iterable<Document>;
  invoices(): Iterable<Document>;
  /** What a migration of the source into the destination must change. */
  expected: { jobs: number; invoices: number; subAccounts: number; noiseJobs: number; noiseInvoices: number };
}

// 24 hex digits: a fixed timestamp, a one-byte tag per kind of document, a 7-byte counter.
const TIMESTAMP = '65a00000';
const TAG = { user: 1, job: 2, invoice: 3 } as const;

function idOf(tag: number, counter: number): ObjectId {
  return ObjectId.createFromHexString(
    `${TIMESTAMP}${tag.toString(16).padStart(2, '0')}${counter.toString(16).padStart(14, '0')}`,
  );
}

const CREATED = new Date('2024-01-01T00:00:00Z').getTime();
const DAY = 86_400_000;

export function createSeed(n: number, options: SeedOptions = {}): Seed {
  const noiseJobs = options.noiseJobs ?? Math.max(100, Math.floor(n / 10));
  const noiseInvoices = Math.floor(noiseJobs / 2);
  const conflict = options.conflict ?? true;
  let userCounter = 0;
  const users: Document[] = [];
  const user = (username: string, kind: string, parent?: ObjectId): ObjectId => {
    const _id = idOf(TAG.user, ++userCounter);
    users.push({
      _id,
      username,
      kind,
      ...(parent ? { parent } : {}),
      name: username.replaceAll('_', ' '),
      email: `${username}@bench.example`,
      active: true,
      markedDelete: false,
      createdAt: new Date(CREATED),
    });
    return _id;
  };

  const destinationId = user(DESTINATION_USERNAME, '1');
  const sourceId = user(SOURCE_USERNAME, '1');
  const noiseId = user(NOISE_USERNAME, '1');

  user('bench_destination_admin', '2', destinationId);
  const survivor = conflict ? user(SHARED_CLIENT_USERNAME, '3', destinationId) : undefined;
  user('bench_destination_pilot', '5', destinationId);

  const sourceAccounts = [
    user('bench_source_admin', '2', sourceId),
    user(conflict ? SHARED_CLIENT_USERNAME : 'bench_source_client_0', '3', sourceId),
    user('bench_source_client_1', '3', sourceId),
    user('bench_source_client_2', '3', sourceId),
    user('bench_source_pilot_0', '5', sourceId),
    user('bench_source_pilot_1', '5', sourceId),
    user('bench_source_kind9', '9', sourceId),
  ];
  const sourceClients = sourceAccounts.slice(1, 4);
  const sourcePilots = sourceAccounts.slice(4, 6);
  for (let i = 0; i < (options.extraMerges ?? 0); i += 1) {
    user(`bench_twin_${i}`, '3', destinationId);
    user(`bench_twin_${i}`, '3', sourceId);
  }
  const noiseClient = user('bench_bystander_client', '3', noiseId);
  const noisePilot = user('bench_bystander_pilot', '5', noiseId);

  const job = (i: number, byPuid: ObjectId, client: ObjectId, pilot: ObjectId): Document => ({
    _id: idOf(TAG.job, i),
    name: `Job ${i}`,
    byPuid,
    client,
    pilot,
    status: i % 3 === 0 ? 'done' : 'new',
    acres: 10 + (i % 500) / 4,
    createdAt: new Date(CREATED + (i % 365) * DAY),
  });
  const invoice = (i: number, customer: ObjectId, client: ObjectId): Document => ({
    _id: idOf(TAG.invoice, i),
    number: `INV-${String(i).padStart(7, '0')}`,
    customer,
    client,
    amount: 100 + (i % 1000) * 1.5,
    issuedAt: new Date(CREATED + (i % 365) * DAY),
    paid: i % 2 === 0,
  });
  const pick = (accounts: ObjectId[], i: number) => accounts[i % accounts.length] as ObjectId;

  return {
    n,
    sourceId,
    destinationId,
    noiseId,
    ...(survivor ? { merge: { loser: sourceClients[0] as ObjectId, survivor } } : {}),
    users,
    *jobs() {
      for (let i = 0; i < n; i += 1) yield job(i, sourceId, pick(sourceClients, i), pick(sourcePilots, i));
      for (let i = 0; i < noiseJobs; i += 1) yield job(n + i, noiseId, noiseClient, noisePilot);
    },
    *invoices() {
      for (let i = 0; i < n; i += 1) yield invoice(i, sourceId, pick(sourceClients, i));
      for (let i = 0; i < noiseInvoices; i += 1) yield invoice(n + i, noiseId, noiseClient);
    },
    expected: {
      jobs: n,
      invoices: n,
      subAccounts: sourceAccounts.length + (options.extraMerges ?? 0),
      noiseJobs,
      noiseInvoices,
    },
  };
}

/** The whole data set as the collections of a snapshot file. */
export function seedCollections(seed: Seed): Map<string, Document[]> {
  return new Map([
    ['users', seed.users],
    ['jobs', [...seed.jobs()]],
    ['invoices', [...seed.invoices()]],
  ]);
}

/** Writes the seed as a canonical Extended JSON snapshot file, the format SnapshotStore reads. */
export async function writeSnapshotSeed(file: string, seed: Seed): Promise<void> {
  await writeFile(file, serializeSnapshot(seedCollections(seed)), 'utf8');
}

/**
 * Writes the seed as mongodump writes one database: `<collection>.bson` (the documents, one after the other)
 * and `<collection>.metadata.json` (its _id index, canonical Extended JSON) per collection, in `dir`.
 */
export async function writeDumpSeed(dir: string, seed: Seed): Promise<void> {
  await mkdir(dir, { recursive: true });
  const collections: [string, Iterable<Document>][] = [
    ['users', seed.users],
    ['jobs', seed.jobs()],
    ['invoices', seed.invoices()],
  ];
  for (const [name, documents] of collections) {
    const out = createWriteStream(path.join(dir, `${name}.bson`));
    for (const document of documents) {
      if (!out.write(BSON.serialize(document))) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    // Canonical Extended JSON, as mongodump writes it.
    const metadata = {
      indexes: [{ v: new BSON.Int32(2), key: { _id: new BSON.Int32(1) }, name: '_id_' }],
      collectionName: name,
      type: 'collection',
    };
    await writeFile(
      path.join(dir, `${name}.metadata.json`),
      BSON.EJSON.stringify(metadata, { relaxed: false }),
      'utf8',
    );
  }
}

/**
 * Inserts the seed into `db` in batches of 10k (unordered), then indexes the reference fields the way a
 * production database would have them, so neither the engine nor the baseline is measured against a
 * collection scan it would not meet in production.
 */
export async function insertSeed(db: Db, seed: Seed): Promise<void> {
  await insertBatches(db, 'users', seed.users);
  await insertBatches(db, 'jobs', seed.jobs());
  await insertBatches(db, 'invoices', seed.invoices());
  await indexReferenceFields(db);
}

/** What production has: every reference field of the default map indexed, and usernames. */
export async function indexReferenceFields(db: Db): Promise<string[]> {
  const keys: Record<string, Document[]> = { users: [{ username: 1 }] };
  for (const refs of [DEFAULT_REFERENCE_MAP.customerRefs, DEFAULT_REFERENCE_MAP.accountRefs]) {
    for (const [collection, fields] of Object.entries(refs)) {
      const list = keys[collection] ?? [];
      keys[collection] = list;
      for (const field of fields) list.push({ [field]: 1 });
    }
  }
  const created: string[] = [];
  for (const [collection, list] of Object.entries(keys)) {
    await db.collection(collection).createIndexes(list.map((key) => ({ key })));
    created.push(...list.map((key) => `${collection}.${Object.keys(key)[0]}`));
  }
  return created;
}

/** Unordered inserts of INSERT_BATCH documents at a time, from any (async) iterable. */
export async function insertBatches(
  db: Db,
  collection: string,
  documents: Iterable<Document> | AsyncIterable<Document>,
): Promise<number> {
  let inserted = 0;
  let batch: Document[] = [];
  for await (const document of documents) {
    batch.push(document);
    if (batch.length === INSERT_BATCH) {
      await db.collection(collection).insertMany(batch, { ordered: false });
      inserted += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) await db.collection(collection).insertMany(batch, { ordered: false });
  return inserted + batch.length;
}
