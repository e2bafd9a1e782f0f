import { isLosslessNumber, parse } from 'lossless-json';

/**
 * Extended JSON as mongoexport writes it, as canonical Extended JSON. In relaxed form (mongoexport's default) a
 * number's JSON spelling is its type: an integer is an Int32, or an Int64 when it does not fit; anything with a
 * fraction or an exponent (`40.0`, `1e3`, `-0.0`) is a Double. JSON.parse cannot keep that (it reads `40.0` as 40
 * and `9007199254740993` as ...992), so numbers are read as text and given their type here, in canonical form,
 * before the driver's EJSON builds the BSON values (ejson-file.ts). Canonical input comes out as JSON.parse would
 * give it. Plain data only (strings, objects, arrays) and no driver: a worker thread can run it and hand the
 * result over (snapshot-worker.ts).
 */
export function canonicalJson(text: string): unknown {
  return typed(losslessTree(text));
}

/**
 * The first half of canonicalJson: the parsed text, its numbers not yet typed. A caller that can drop the text
 * before `typed` runs (the worker does) needs less memory: the text of a large snapshot is a hundred megabytes.
 */
export function losslessTree(text: string): unknown {
  // Windows tools write a byte order mark; it is not part of the JSON.
  return parse(text.startsWith('\uFEFF') ? text.slice(1) : text);
}

// The keys that make an object an Extended JSON value rather than a document (bson's own list).
const TYPE_KEYS = new Set([
  '$oid',
  '$binary',
  '$uuid',
  '$symbol',
  '$numberInt',
  '$numberDecimal',
  '$numberDouble',
  '$numberLong',
  '$minKey',
  '$maxKey',
  '$regex',
  '$regularExpression',
  '$timestamp',
  '$date',
  '$code',
  '$dbPointer',
  '$undefined',
]);

const INT32 = [-(2n ** 31n), 2n ** 31n - 1n];
const INT64 = [-(2n ** 63n), 2n ** 63n - 1n];

/**
 * A document's numbers in canonical form; inside a type wrapper, numbers stay what EJSON expects there. The
 * parsed tree is changed in place: a second tree of a large snapshot would double the memory its parse needs.
 */
export function typed(value: unknown): unknown {
  if (isLosslessNumber(value)) return typedNumber(value.value);
  if (value === null || typeof value !== 'object') return value;
  const wrapper = !Array.isArray(value) && Object.keys(value).some((key) => TYPE_KEYS.has(key));
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields))
    fields[key] = wrapper ? wrapped(key, fields[key]) : typed(fields[key]);
  return value;
}

function wrapped(key: string, value: unknown): unknown {
  // A `$scope` is a document; legacy `$date: <ms>` must be an Int64 for EJSON, even when it fits an Int32.
  if (key === '$scope') return typed(value);
  if (key === '$date' && isLosslessNumber(value)) return { $numberLong: value.value };
  // `$timestamp: {t, i}`, `$minKey: 1`: plain numbers.
  return plain(value);
}

function typedNumber(text: string): Record<string, string> {
  if (/^-?\d+$/.test(text)) {
    const integer = BigInt(text);
    if (integer >= INT32[0] && integer <= INT32[1]) return { $numberInt: String(integer) };
    if (integer >= INT64[0] && integer <= INT64[1]) return { $numberLong: String(integer) };
  }
  // With a fraction or an exponent, or an integer too large for Int64 (as EJSON itself reads one).
  return { $numberDouble: text };
}

function plain(value: unknown): unknown {
  if (isLosslessNumber(value)) return Number(value.value);
  if (value === null || typeof value !== 'object') return value;
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) fields[key] = plain(fields[key]);
  return value;
}
