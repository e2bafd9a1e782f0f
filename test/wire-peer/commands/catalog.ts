import { find as mingoFind } from 'mingo';
import { type Document, Long } from 'mongodb';
import { Code, CommandError } from '../errors.js';
import { ReadView } from '../storage.js';
import { assertUnique } from '../unique-indexes.js';
import { collectionName, commandOptions, existingCollection, type Handler, namespace } from './context.js';

const ID_INDEX = { v: 2, key: { _id: 1 }, name: '_id_' };

/** A listing command's reply: everything in the first batch, as a server does for small catalogs. */
function listing(ns: string, documents: Document[]): Document {
  return { cursor: { id: Long.ZERO, ns, firstBatch: documents }, ok: 1 };
}

const create: Handler = (run) => {
  const name = collectionName(run);
  const { created } = run.peer.storage.ensureCollection(run.db, name, commandOptions(run));
  if (!created) {
    throw new CommandError(Code.NamespaceExists, `Collection ${namespace(run, name)} already exists.`);
  }
  return { ok: 1 };
};

const drop: Handler = (run) => {
  const name = collectionName(run);
  const dropped = run.peer.storage.dropCollection(run.db, name);
  // Since MongoDB 7.0 dropping a missing collection succeeds.
  if (!dropped) return { ok: 1 };
  return { ns: namespace(run, name), nIndexesWas: dropped.indexes.length + 1, ok: 1 };
};

const dropDatabase: Handler = (run) => {
  run.peer.storage.dropDatabase(run.db);
  return { dropped: run.db, ok: 1 };
};

const listCollections: Handler = (run) => {
  const collections = [...(run.peer.storage.databases.get(run.db)?.values() ?? [])];
  const infos = collections.map((collection) => ({
    name: collection.name,
    type: 'collection',
    options: collection.options,
    info: { readOnly: false, uuid: collection.uuid },
    idIndex: ID_INDEX,
  }));
  const filter = (run.command.filter ?? {}) as Document;
  const selected = mingoFind(infos, filter).all() as Document[];
  const out = run.command.nameOnly ? selected.map(({ name, type }) => ({ name, type })) : selected;
  return listing(`${run.db}.$cmd.listCollections`, out);
};

const listDatabases: Handler = (run) => {
  const databases = [...run.peer.storage.databases.keys()].map((name) => ({
    name,
    sizeOnDisk: 0,
    empty: false,
  }));
  const selected = mingoFind(databases, (run.command.filter ?? {}) as Document).all() as Document[];
  if (run.command.nameOnly) return { databases: selected.map(({ name }) => ({ name })), ok: 1 };
  return { databases: selected, totalSize: 0, ok: 1 };
};

const listIndexes: Handler = (run) => {
  const name = collectionName(run);
  const collection = existingCollection(run, name);
  if (!collection)
    throw new CommandError(Code.NamespaceNotFound, `ns does not exist: ${namespace(run, name)}`);
  return listing(namespace(run, name), [ID_INDEX, ...collection.indexes]);
};

function sameKey(a: Document, b: Document): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const createIndexes: Handler = (run) => {
  const name = collectionName(run);
  const { storage } = run.peer;
  const { collection, created } = storage.ensureCollection(run.db, name);
  const before = collection.indexes.length + 1;
  const specs = (run.command.indexes ?? []) as Document[];
  for (const spec of specs) {
    if (typeof spec.name !== 'string' || typeof spec.key !== 'object') {
      throw new CommandError(Code.BadValue, 'an index needs a key and a name');
    }
    const existing = [ID_INDEX, ...collection.indexes].find((index) => index.name === spec.name);
    if (existing) {
      if (!sameKey(existing.key, spec.key)) {
        throw new CommandError(
          Code.IndexKeySpecsConflict,
          `An existing index has the same name as the requested index. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(existing)}`,
        );
      }
      continue;
    }
    const index: Document = { v: 2, ...spec };
    // Refused, like a server's index build, when the documents already break it.
    if (index.unique === true)
      assertUnique(collection, index, new ReadView(storage, storage.now).documents(run.db, name));
    collection.indexes.push(index);
  }
  return {
    numIndexesBefore: before,
    numIndexesAfter: collection.indexes.length + 1,
    createdCollectionAutomatically: created,
    ok: 1,
  };
};

const dropIndexes: Handler = (run) => {
  const name = collectionName(run);
  const collection = existingCollection(run, name);
  if (!collection) throw new CommandError(Code.NamespaceNotFound, `ns not found ${namespace(run, name)}`);
  const before = collection.indexes.length + 1;
  const wanted = run.command.index as string | string[] | Document;
  if (wanted === '*') {
    collection.indexes = [];
    return { nIndexesWas: before, ok: 1 };
  }
  const names = typeof wanted === 'string' ? [wanted] : Array.isArray(wanted) ? wanted : undefined;
  for (const target of names ?? [wanted]) {
    if (target === '_id_' || (typeof target === 'object' && sameKey(target, ID_INDEX.key))) {
      throw new CommandError(Code.InvalidOptions, 'cannot drop _id index');
    }
    const at = collection.indexes.findIndex((index) =>
      typeof target === 'string' ? index.name === target : sameKey(index.key, target),
    );
    if (at < 0)
      throw new CommandError(Code.IndexNotFound, `index not found with name [${JSON.stringify(target)}]`);
    collection.indexes.splice(at, 1);
  }
  return { nIndexesWas: before, ok: 1 };
};

export const catalogCommands: Record<string, Handler> = {
  create,
  drop,
  dropDatabase,
  listCollections,
  listDatabases,
  listIndexes,
  createIndexes,
  dropIndexes,
};
