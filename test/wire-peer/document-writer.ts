import { type StoredDocument, valueKey } from './documents.js';
import { type Collection, type ReadView, type Storage, Writer } from './storage.js';
import { duplicateKey, UniqueKeys } from './unique-indexes.js';

const ID_INDEX = { key: { _id: 1 }, name: '_id_' };

/**
 * The write path of one writer (a transaction, or one plain write command): `_id` uniqueness and unique
 * secondary indexes checked against what this writer sees, then the storage writer's first-writer-wins
 * checks. Throws DuplicateKey (CommandError 11000), Blocked or ChangedSinceSnapshot.
 */
export class DocumentWriter {
  private readonly writer: Writer;
  private readonly uniqueKeys = new Map<Collection, UniqueKeys[]>();

  constructor(storage: Storage, readTs: number) {
    this.writer = new Writer(storage, readTs);
  }

  get view(): ReadView {
    return this.writer.view;
  }

  get readTs(): number {
    return this.writer.readTs;
  }

  insert(collection: Collection, doc: StoredDocument): void {
    const key = valueKey(doc.plain._id);
    if (this.view.get(collection, key)) throw duplicateKey(collection, ID_INDEX, doc.typed);
    this.write(collection, key, undefined, doc);
  }

  replace(collection: Collection, before: StoredDocument, after: StoredDocument): void {
    this.write(collection, valueKey(before.plain._id), before, after);
  }

  remove(collection: Collection, before: StoredDocument): void {
    this.write(collection, valueKey(before.plain._id), before, undefined);
  }

  /** Checks every unique index first and updates them last, so a refused write leaves them as they were. */
  private write(
    collection: Collection,
    key: string,
    before: StoredDocument | undefined,
    after: StoredDocument | undefined,
  ): void {
    const indexes = this.uniqueIndexes(collection);
    if (after) for (const unique of indexes) unique.check(after);
    this.writer.write(collection, key, after);
    for (const unique of indexes) unique.move(before, after);
  }

  /** The commit's cluster time (undefined when nothing changed). */
  commit(): number | undefined {
    return this.writer.commit();
  }

  abort(): void {
    this.writer.abort();
  }

  private uniqueIndexes(collection: Collection): UniqueKeys[] {
    let indexes = this.uniqueKeys.get(collection);
    if (!indexes) {
      indexes = collection.indexes
        .filter((spec) => spec.unique === true)
        .map((spec) => new UniqueKeys(collection, spec, this.view.documents(collection.db, collection.name)));
      this.uniqueKeys.set(collection, indexes);
    }
    return indexes;
  }
}
