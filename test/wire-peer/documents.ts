import { isEqual } from 'mingo/util';
import { BSON, type Document, Long } from 'mongodb';

/**
 * A stored document in two shapes. `typed` is what a server stores and returns: every BSON number keeps its
 * type (Int32, Double, Long), so a double 212.0 comes back as a double. `plain` is the same document with
 * numbers as JS numbers, the only shape mingo can match, sort, group and update. Both are immutable once
 * stored: a change makes a new pair, so readers holding an old version never see it move.
 */
export interface StoredDocument {
  readonly typed: Document;
  readonly plain: Document;
}

/** The BSON decoding a server's documents need: numbers keep their types. */
export function decodeTyped(bytes: Uint8Array): Document {
  return BSON.deserialize(bytes, { promoteValues: false });
}

/** Decoding for command logic (filters, updates, options): numbers become JS numbers, as mingo needs. */
export function decodePlain(bytes: Uint8Array): Document {
  return BSON.deserialize(bytes);
}

export function stored(typed: Document, plain: Document = toPlain(typed) as Document): StoredDocument {
  return { typed, plain };
}

function bsonType(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null
    ? (value as { _bsontype?: string })._bsontype
    : undefined;
}

function isPlainContainer(value: unknown): value is Document | unknown[] {
  return (
    Array.isArray(value) || (typeof value === 'object' && value !== null && bsonType(value) === undefined)
  );
}

/** Typed -> plain: Int32/Double become numbers, a Long does when it fits a double exactly. */
export function toPlain(value: unknown): unknown {
  switch (bsonType(value)) {
    case 'Int32':
    case 'Double':
      return (value as { valueOf(): number }).valueOf();
    case 'Long': {
      const long = value as Long;
      return long.lessThanOrEqual(Long.fromNumber(Number.MAX_SAFE_INTEGER)) &&
        long.greaterThanOrEqual(Long.fromNumber(Number.MIN_SAFE_INTEGER))
        ? long.toNumber()
        : long;
    }
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (isPlainContainer(value) && !(value instanceof Date) && !(value instanceof RegExp)) {
    const out: Document = {};
    for (const [key, field] of Object.entries(value)) out[key] = toPlain(field);
    return out;
  }
  return value;
}

/**
 * The typed form of a document an update produced from `before`. The update ran on plain values, so every
 * value it did not change takes its type back from `before` (a double 212.0 stays a double); values it
 * wrote are stored as the JS values mingo produced (a number is an int32 when integral, else a double).
 */
export function restoreTypes(
  after: unknown,
  before: StoredDocument | { typed: unknown; plain: unknown },
): unknown {
  if (isEqual(after, before.plain)) return before.typed;
  if (Array.isArray(after) && Array.isArray(before.plain) && Array.isArray(before.typed)) {
    const typed = before.typed;
    const plain = before.plain;
    return after.map((item, i) =>
      i < plain.length ? restoreTypes(item, { typed: typed[i], plain: plain[i] }) : item,
    );
  }
  if (isObjectLike(after) && isObjectLike(before.plain) && isObjectLike(before.typed)) {
    const typed = before.typed;
    const plain = before.plain;
    const out: Document = {};
    for (const [key, value] of Object.entries(after)) {
      out[key] = key in plain ? restoreTypes(value, { typed: typed[key], plain: plain[key] }) : value;
    }
    return out;
  }
  return after;
}

function isObjectLike(value: unknown): value is Document {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    bsonType(value) === undefined &&
    !(value instanceof Date) &&
    !(value instanceof RegExp)
  );
}

/**
 * A value's identity as MongoDB compares it for `_id` and index keys: numbers by value whatever their BSON
 * type (1, 1.0 and Long(1) are one key), everything else by its canonical Extended JSON.
 */
export function valueKey(value: unknown): string {
  if (typeof value === 'string') return `s:${value}`;
  if (typeof value === 'number') return `n:${value}`;
  switch (bsonType(value)) {
    case 'ObjectId':
      return `o:${(value as { toHexString(): string }).toHexString()}`;
    case 'Int32':
    case 'Double':
      return `n:${(value as { valueOf(): number }).valueOf()}`;
    case 'Long':
      return `n:${(value as Long).toString()}`;
  }
  return `x:${BSON.EJSON.stringify(toPlain(value) as Document, { relaxed: false })}`;
}
