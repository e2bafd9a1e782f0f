import { Query } from 'mingo';
import { resolve } from 'mingo/util';
import { BSON, type Document } from 'mongodb';
import { type StoredDocument, valueKey } from './documents.js';
import { Code, CommandError } from './errors.js';

/**
 * The keys of one unique secondary index over one writer's view: which document holds each key. Built once
 * per writer from what it sees, then kept up to date by its own writes, so a check costs a map lookup.
 * What it cannot see (another open transaction's writes, or commits after its snapshot) it cannot check:
 * a real server would make one of two such writers fail with WriteConflict.
 */
export class UniqueKeys {
  private readonly holders = new Map<string, string>();
  private readonly partial: Query | undefined;

  constructor(
    private readonly collection: { db: string; name: string },
    readonly spec: Document,
    documents: Iterable<StoredDocument>,
  ) {
    this.partial = spec.partialFilterExpression ? new Query(spec.partialFilterExpression, {}) : undefined;
    for (const doc of documents) {
      this.check(doc);
      this.move(undefined, doc);
    }
  }

  /** Throws DuplicateKey when `doc` would take a key another document holds. */
  check(doc: StoredDocument): void {
    const key = this.keyOf(doc.plain);
    if (key === undefined) return;
    const holder = this.holders.get(key);
    if (holder !== undefined && holder !== valueKey(doc.plain._id)) {
      throw duplicateKey(this.collection, this.spec, doc.typed);
    }
  }

  /** Records a write that passed check(): `before` gives its key up, `after` takes its own. */
  move(before: StoredDocument | undefined, after: StoredDocument | undefined): void {
    if (before) {
      const key = this.keyOf(before.plain);
      if (key !== undefined && this.holders.get(key) === valueKey(before.plain._id)) this.holders.delete(key);
    }
    if (after) {
      const key = this.keyOf(after.plain);
      if (key !== undefined) this.holders.set(key, valueKey(after.plain._id));
    }
  }

  /**
   * The index key of a document, or undefined when the index leaves it out (sparse and every field missing,
   * or not matching the partial filter). An array value is one key here; a server would index each element.
   */
  private keyOf(plain: Document): string | undefined {
    if (this.partial && !this.partial.test(plain)) return undefined;
    const fields = Object.keys(this.spec.key as Document);
    const values = fields.map((field) => resolve(plain, field));
    if (this.spec.sparse === true && values.every((value) => value === undefined)) return undefined;
    const strength = (this.spec.collation as { strength?: number } | undefined)?.strength ?? 3;
    return valueKey(values.map((value) => (value === undefined ? null : collate(value, strength))));
  }
}

/** Throws DuplicateKey when `documents` already hold a key twice (a unique index build fails on them). */
export function assertUnique(
  collection: { db: string; name: string },
  spec: Document,
  documents: Iterable<StoredDocument>,
): void {
  new UniqueKeys(collection, spec, documents);
}

/** Strength 1 and 2 collations compare strings without case (1 also without accents). */
function collate(value: unknown, strength: number): unknown {
  if (typeof value !== 'string' || strength > 2) return value;
  const lower = value.toLocaleLowerCase();
  return strength === 1 ? lower.normalize('NFD').replace(/\p{Diacritic}/gu, '') : lower;
}

export function duplicateKey(
  collection: { db: string; name: string },
  spec: Document,
  typed: Document,
): CommandError {
  const keyPattern = spec.key as Document;
  const keyValue = Object.fromEntries(
    Object.keys(keyPattern).map((field) => [field, resolve(typed, field) ?? null]),
  );
  const shown = Object.entries(keyValue)
    .map(([field, value]) => `${field}: ${BSON.EJSON.stringify(value)}`)
    .join(', ');
  return new CommandError(
    Code.DuplicateKey,
    `E11000 duplicate key error collection: ${collection.db}.${collection.name} index: ${spec.name} dup key: { ${shown} }`,
    { keyPattern, keyValue },
  );
}
