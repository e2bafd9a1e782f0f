import { BSON, type Document } from 'mongodb';

/**
 * Plain JSON for people and jq: ObjectIds as 24-hex strings, dates as ISO strings, numbers as numbers.
 * Lossy on purpose; documents that must keep their types are written with `canonical` instead.
 */
export function plain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof BSON.ObjectId) return value.toHexString();
  if (value instanceof BSON.Long) return value.toNumber();
  if (value instanceof BSON.Int32 || value instanceof BSON.Double) return value.valueOf();
  if (value instanceof BSON.Decimal128) return value.toString();
  if (value instanceof BSON.Binary) return value.toString('base64');
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, plain(entry)]));
}

/** A BSON value as a message shows it: relaxed Extended JSON (`{"$oid":"…"}`, `"a string"`), or `absent`. */
export function showValue(value: unknown, absent: string): string {
  if (value === undefined || value === null) return absent;
  return BSON.EJSON.stringify({ v: value }, { relaxed: true }).slice(5, -1);
}

/** Canonical Extended JSON as an object: every BSON type survives the trip through a JSON file. */
export function canonical(document: Document): Document {
  return BSON.EJSON.serialize(document, { relaxed: false });
}
