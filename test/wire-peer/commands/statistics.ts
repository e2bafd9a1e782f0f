import { Query } from 'mingo';
import { resolve } from 'mingo/util';
import { BSON, type Document } from 'mongodb';
import type { StoredDocument } from '../documents.js';
import { Code, CommandError } from '../errors.js';
import { type CommandRun, existingCollection, namespace, readView } from './context.js';

const ID_INDEX = { key: { _id: 1 }, name: '_id_' };
/** Each index entry points at its document's record id (a 64-bit integer in WiredTiger). */
const RECORD_ID_BYTES = 8;

/**
 * `{$collStats: {storageStats: {scale?}, count: {}}}` as the first stage: one document about the collection,
 * computed from what this peer stores. `size` is the sum of the documents' BSON sizes (a server reports the
 * same, uncompressed), `avgObjSize` its average; `storageSize` is `size` (the peer compresses nothing, a
 * server's is smaller); each index's size is the BSON size of its keys plus a record id per entry (WiredTiger
 * prefix-compresses keys, so a server's are smaller). A missing collection is NamespaceNotFound (26), as on
 * mongod; the stage is refused in a transaction (263) and anywhere but first (40602).
 */
export function collStats(run: CommandRun, collection: string, spec: Document): Document {
  if (run.session.transaction) {
    throw new CommandError(
      Code.OperationNotSupportedInTransaction,
      'Operation not permitted in transaction :: caused by :: $collStats cannot be used in a transaction',
    );
  }
  const ns = namespace(run, collection);
  const out: Document = { ns, host: run.peer.identity.host, localTime: new Date() };
  if (run.peer.identity.role === 'mongos') out.shard = 'wire-peer';
  const stored = existingCollection(run, collection);
  const documents = [...readView(run).documents(run.db, collection)];
  if (spec.storageStats) {
    if (!stored) {
      throw new CommandError(
        Code.NamespaceNotFound,
        `PlanExecutor error during aggregation :: caused by :: Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [${ns}] not found.`,
      );
    }
    const scale = Math.max(1, Math.trunc(Number(spec.storageStats.scale ?? 1)));
    const size = documents.reduce((sum, doc) => sum + BSON.calculateObjectSize(doc.typed), 0);
    const indexSizes: Document = {};
    for (const index of [ID_INDEX, ...stored.indexes]) {
      indexSizes[index.name as string] = Math.trunc(indexBytes(index, documents) / scale);
    }
    const totalIndexSize = Object.values(indexSizes).reduce((sum: number, bytes) => sum + bytes, 0);
    out.storageStats = {
      size: Math.trunc(size / scale),
      count: documents.length,
      ...(documents.length > 0 ? { avgObjSize: Math.trunc(size / documents.length) } : {}),
      numOrphanDocs: 0,
      storageSize: Math.trunc(size / scale),
      freeStorageSize: 0,
      capped: false,
      nindexes: stored.indexes.length + 1,
      indexBuilds: [],
      totalIndexSize,
      totalSize: Math.trunc(size / scale) + totalIndexSize,
      indexSizes,
      scaleFactor: scale,
    };
  }
  if (spec.count) out.count = documents.length;
  return out;
}

/** The keys an index holds (partial and sparse indexes skip documents), each with a record id. */
function indexBytes(index: Document, documents: StoredDocument[]): number {
  const fields = Object.keys(index.key as Document);
  const partial = index.partialFilterExpression ? new Query(index.partialFilterExpression) : undefined;
  let bytes = 0;
  for (const doc of documents) {
    if (partial && !partial.test(doc.plain)) continue;
    const values = fields.map((field) => resolve(doc.typed, field));
    if (index.sparse && values.every((value) => value === undefined)) continue;
    const key = Object.fromEntries(values.map((value, i) => [String(i), value ?? null]));
    bytes += BSON.calculateObjectSize(key) + RECORD_ID_BYTES;
  }
  return bytes;
}
