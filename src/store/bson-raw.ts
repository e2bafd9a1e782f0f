import { BSON, type Document } from 'mongodb';

/**
 * Filters and updates decided on a document's BSON bytes, without decoding it: the dump back end reads every
 * document of a large collection on every pass, and most of them only need one field looked at (is it one of
 * the values the plan moves?). Only the shapes the tool's plans use are handled (equality and `$in` on ObjectId,
 * string and boolean values of top-level fields, `$ne`, `$not: {$type: 'array'}`, `$or`; a `$set` or a
 * `$switch` of literal values that keeps the value's length); anything else, and any field holding an array,
 * answers undefined: the caller decodes the document and asks mingo, so the result is always mingo's.
 */

/** True/false when the bytes decide it; undefined when the document must be decoded to know. */
export type RawTest = (bytes: Buffer) => boolean | undefined;

/** Changes the bytes in place and says whether they changed; undefined (bytes untouched) when it cannot. */
export type RawUpdate = (bytes: Buffer) => boolean | undefined;

const OBJECT_ID = 0x07;
const STRING = 0x02;
const BOOLEAN = 0x08;
const ARRAY = 0x04;

/** Where a top-level element's value lies: its type, and the bytes of the value. */
interface Element {
  type: number;
  start: number;
  end: number;
}

/** Bytes of the value that follows, for each type; undefined for the types whose length is read from the value. */
const FIXED: Record<number, number> = {
  1: 8,
  6: 0,
  7: 12,
  8: 1,
  9: 8,
  10: 0,
  16: 4,
  17: 8,
  18: 8,
  19: 16,
  255: 0,
  127: 0,
};

function valueEnd(bytes: Buffer, type: number, start: number): number | undefined {
  const fixed = FIXED[type];
  if (fixed !== undefined) return start + fixed;
  switch (type) {
    case 0x02:
    case 0x0d:
    case 0x0e:
      return start + 4 + bytes.readInt32LE(start);
    case 0x03:
    case 0x04:
    case 0x0f:
      return start + bytes.readInt32LE(start);
    case 0x05:
      return start + 5 + bytes.readInt32LE(start);
    case 0x0b: {
      const pattern = bytes.indexOf(0, start);
      return bytes.indexOf(0, pattern + 1) + 1;
    }
    case 0x0c:
      return start + 4 + bytes.readInt32LE(start) + 12;
    default:
      return undefined;
  }
}

/**
 * Whether `bytes` holds the first `length` bytes of `other` at `at` (`at + length` within bytes). A loop, not
 * Buffer#compare: these are a field name's or an ObjectId's few bytes, tested for every element of every
 * document of a pass, where the call into compare costs more than the comparison.
 */
function sameBytes(bytes: Buffer, at: number, other: Buffer, length: number): boolean {
  for (let i = 0; i < length; i += 1) if (bytes[at + i] !== other[i]) return false;
  return true;
}

/** Each top-level element in order with its name's bytes; stops (false) when `visit` says so. */
function walk(
  bytes: Buffer,
  visit: (keyStart: number, keyEnd: number, type: number, start: number, end: number) => boolean,
): boolean {
  let position = 4;
  const last = bytes.length - 1;
  while (position < last) {
    const type = bytes[position] as number;
    if (type === 0) return true;
    const keyEnd = bytes.indexOf(0, position + 1);
    if (keyEnd < 0) return false;
    const start = keyEnd + 1;
    const end = valueEnd(bytes, type, start);
    if (end === undefined || end > last) return false;
    // Primitives, not an object per element: this runs for every field of every document of a pass.
    if (!visit(position + 1, keyEnd, type, start, end)) return true;
    position = end;
  }
  return true;
}

/** The top-level element named `name`; null when it is not there; undefined when the bytes cannot be walked. */
export function rawElement(bytes: Buffer, name: Buffer): Element | null | undefined {
  let found: Element | null = null;
  const walked = walk(bytes, (keyStart, keyEnd, type, start, end) => {
    if (keyEnd - keyStart !== name.length || !sameBytes(bytes, keyStart, name, name.length)) return true;
    found = { type, start, end };
    return false;
  });
  return walked || found ? found : undefined;
}

/** A value as a key comparable with an element's (`o<hex>`, `s<text>`, `b<bool>`), or undefined for other types. */
function keyOf(value: unknown): string | undefined {
  if (value instanceof BSON.ObjectId) return `o${value.toHexString()}`;
  if (typeof value === 'string') return `s${value}`;
  if (typeof value === 'boolean') return `b${value}`;
  return undefined;
}

function elementKey(bytes: Buffer, element: Element): string | undefined {
  switch (element.type) {
    case OBJECT_ID:
      return `o${bytes.toString('hex', element.start, element.end)}`;
    case STRING:
      return `s${bytes.toString('utf8', element.start + 4, element.end - 1)}`;
    case BOOLEAN:
      return `b${bytes[element.start] === 1}`;
    default:
      return undefined;
  }
}

const ID = Buffer.from('_id', 'utf8');

/** The document's _id as snapshot.ts's idKey spells it (`o<hex>`, `s<text>`), when it is an ObjectId or a string. */
export function rawIdKey(bytes: Buffer): string | undefined {
  const element = rawElement(bytes, ID);
  return element && element.type !== BOOLEAN ? elementKey(bytes, element) : undefined;
}

const isPlainObject = (value: unknown): value is Document =>
  value !== null &&
  typeof value === 'object' &&
  !Array.isArray(value) &&
  Object.getPrototypeOf(value) === Object.prototype;

/** The keys of a list of values, or undefined when one is of a type compared otherwise (numbers, dates, null). */
function keysOf(values: unknown[]): Set<string> | undefined {
  const keys = new Set<string>();
  for (const value of values) {
    const key = keyOf(value);
    if (key === undefined) return undefined;
    keys.add(key);
  }
  return keys;
}

/** One condition on a field's element (null: the field is missing); never given an array. */
type Condition = (bytes: Buffer, element: Element | null) => boolean;

/** Sets this small compare ObjectIds byte by byte (no hex string made per document). */
const FEW = 8;

function inSet(keys: Set<string>): Condition {
  const ids = [...keys].filter((key) => key.startsWith('o')).map((key) => Buffer.from(key.slice(1), 'hex'));
  // A missing field equals null, which no set here holds; an element of another type equals none of the values.
  return (bytes, element) => {
    if (!element) return false;
    if (element.type === OBJECT_ID && ids.length <= FEW) {
      return ids.some((id) => sameBytes(bytes, element.start, id, 12));
    }
    const key = elementKey(bytes, element);
    return key !== undefined && keys.has(key);
  };
}

function fieldConditions(condition: unknown): Condition[] | undefined {
  const single = keysOf([condition]);
  if (single) return [inSet(single)];
  if (!isPlainObject(condition)) return undefined;
  const conditions: Condition[] = [];
  for (const [operator, operand] of Object.entries(condition)) {
    if (operator === '$in' && Array.isArray(operand)) {
      const keys = keysOf(operand);
      if (!keys) return undefined;
      conditions.push(inSet(keys));
    } else if (operator === '$eq' || operator === '$ne') {
      const keys = keysOf([operand]);
      if (!keys) return undefined;
      const test = inSet(keys);
      conditions.push(operator === '$eq' ? test : (bytes, element) => !test(bytes, element));
    } else if (
      operator === '$not' &&
      isPlainObject(operand) &&
      Object.keys(operand).length === 1 &&
      operand.$type === 'array'
    ) {
      // Arrays never reach a condition (the document is decoded): anything else is not an array.
      conditions.push(() => true);
    } else {
      return undefined;
    }
  }
  return conditions;
}

/** A filter decided on the bytes where it can be, or undefined when no part of it can be (mingo only). */
export function rawTest(filter: Document): RawTest | undefined {
  const tests: RawTest[] = [];
  for (const [key, condition] of Object.entries(filter)) {
    if (key === '$or' && Array.isArray(condition) && condition.length > 0) {
      const branches = condition.map((branch) => (isPlainObject(branch) ? rawTest(branch) : undefined));
      if (branches.some((branch) => branch === undefined)) return undefined;
      tests.push(anyOf(branches as RawTest[]));
      continue;
    }
    if (key.startsWith('$') || key.includes('.')) return undefined;
    const conditions = fieldConditions(condition);
    if (!conditions) return undefined;
    const name = Buffer.from(key, 'utf8');
    tests.push((bytes) => {
      const element = rawElement(bytes, name);
      if (element === undefined || element?.type === ARRAY) return undefined;
      return conditions.every((test) => test(bytes, element));
    });
  }
  return allOf(tests);
}

function allOf(tests: RawTest[]): RawTest {
  return (bytes) => {
    let answer: boolean | undefined = true;
    for (const test of tests) {
      const result = test(bytes);
      if (result === false) return false;
      if (result === undefined) answer = undefined;
    }
    return answer;
  };
}

function anyOf(tests: RawTest[]): RawTest {
  return (bytes) => {
    let answer: boolean | undefined = false;
    for (const test of tests) {
      const result = test(bytes);
      if (result === true) return true;
      if (result === undefined) answer = undefined;
    }
    return answer;
  };
}

/** A literal the bytes can hold in place: an ObjectId, or a string (of the same length as the one it replaces). */
function literal(value: unknown): BSON.ObjectId | string | undefined {
  return value instanceof BSON.ObjectId || typeof value === 'string' ? value : undefined;
}

function unwrap(value: unknown): unknown {
  return isPlainObject(value) && Object.keys(value).length === 1 && '$literal' in value
    ? value.$literal
    : undefined;
}

/** A value's bytes as they stand in a BSON element of its type: an ObjectId's 12, a string's UTF-8 and its zero. */
function valueBytes(value: BSON.ObjectId | string): { type: number; bytes: Buffer } {
  return value instanceof BSON.ObjectId
    ? { type: OBJECT_ID, bytes: Buffer.from(value.id) }
    : { type: STRING, bytes: Buffer.from(`${value}\0`, 'utf8') };
}

/** One value an update replaces (any value, for a `$set`) and the bytes it puts in its place. */
interface Replacing {
  from?: { type: number; bytes: Buffer };
  to: { type: number; bytes: Buffer };
}

/** `{ $set: { f: v } }`, or the plan's `[{ $set: { f: { $switch: ... from -> to ..., default: '$f' } } }]`. */
function setShape(update: Document | Document[]): { field: string; moves: Replacing[] } | undefined {
  if (!Array.isArray(update)) {
    if (Object.keys(update).length !== 1 || !isPlainObject(update.$set)) return undefined;
    const entries = Object.entries(update.$set);
    const [entry] = entries;
    if (entries.length !== 1 || !entry || entry[0].startsWith('$') || entry[0].includes('.'))
      return undefined;
    const value = literal(entry[1]);
    return value === undefined ? undefined : { field: entry[0], moves: [{ to: valueBytes(value) }] };
  }
  const [stage] = update;
  if (update.length !== 1 || !stage || Object.keys(stage).length !== 1 || !isPlainObject(stage.$set))
    return undefined;
  const entries = Object.entries(stage.$set);
  const [entry] = entries;
  if (entries.length !== 1 || !entry || entry[0].startsWith('$') || entry[0].includes('.')) return undefined;
  const [field, expression] = entry;
  const path = `$${field}`;
  const spec =
    isPlainObject(expression) && Object.keys(expression).length === 1 ? expression.$switch : undefined;
  if (!isPlainObject(spec) || spec.default !== path || !Array.isArray(spec.branches)) return undefined;
  const moves: Replacing[] = [];
  const seen = new Set<string>();
  for (const branch of spec.branches) {
    const test = isPlainObject(branch) && isPlainObject(branch.case) ? branch.case.$eq : undefined;
    if (!Array.isArray(test) || test.length !== 2 || test[0] !== path) return undefined;
    const fromValue = unwrap(test[1]);
    const key = keyOf(fromValue);
    const to = literal(unwrap(branch.then));
    if (key === undefined || to === undefined || seen.has(key)) return undefined;
    seen.add(key);
    // A boolean is never replaced in place (the update decodes the document): it needs no bytes here.
    const from = literal(fromValue);
    if (from !== undefined) moves.push({ from: valueBytes(from), to: valueBytes(to) });
  }
  return { field, moves };
}

/**
 * An update applied to the bytes in place when it sets one top-level field to a value of the same type and
 * length as the one there (an ObjectId over an ObjectId: the plan's re-pointing and its rollback); undefined when
 * the update has another shape. The bytes of every value involved are worked out once, not per document.
 */
export function rawUpdate(update: Document | Document[]): RawUpdate | undefined {
  const shape = setShape(update);
  if (!shape) return undefined;
  const name = Buffer.from(shape.field, 'utf8');
  const switches = Array.isArray(update);
  return (bytes) => {
    const element = rawElement(bytes, name);
    if (!element || (element.type !== OBJECT_ID && element.type !== STRING)) return undefined;
    const start = element.type === STRING ? element.start + 4 : element.start;
    const length = element.end - start;
    const move = switches
      ? shape.moves.find(
          ({ from }) =>
            from?.type === element.type &&
            from.bytes.length === length &&
            sameBytes(bytes, start, from.bytes, length),
        )
      : shape.moves[0];
    // A $switch whose branches miss this value leaves it as it is.
    if (!move) return switches ? false : undefined;
    const replacement = move.to;
    if (replacement.type !== element.type || replacement.bytes.length !== length) return undefined;
    if (sameBytes(bytes, start, replacement.bytes, length)) return false;
    replacement.bytes.copy(bytes, start);
    return true;
  };
}

/**
 * The bytes (type and value) of these top-level fields, in the order given, as one string: documents with equal
 * keys hold equal values there, so whatever is computed from those fields alone is computed once per key.
 * Undefined when the bytes cannot be walked or name a field twice.
 */
export function rawFieldsKey(bytes: Buffer, names: Buffer[]): string | undefined {
  const found: (string | undefined)[] = names.map(() => undefined);
  let twice = false;
  const walked = walk(bytes, (keyStart, keyEnd, type, start, end) => {
    const length = keyEnd - keyStart;
    for (let i = 0; i < names.length; i += 1) {
      const name = names[i] as Buffer;
      if (name.length !== length || !sameBytes(bytes, keyStart, name, length)) continue;
      if (found[i] !== undefined) twice = true;
      found[i] = `${type}:${end - start}:${bytes.toString('latin1', start, end)}`;
    }
    return !twice;
  });
  if (!walked || twice) return undefined;
  return found.map((piece) => piece ?? '-').join('|');
}

/**
 * A document of only these top-level fields (in the document's order), decoded from their bytes alone: what a
 * projection keeps, without decoding the rest. Undefined when the bytes cannot be walked.
 */
export function decodeFields(bytes: Buffer, names: Set<string>): Document | undefined {
  const pieces: Buffer[] = [];
  const walked = walk(bytes, (keyStart, keyEnd, _type, _start, end) => {
    if (names.has(bytes.toString('utf8', keyStart, keyEnd))) pieces.push(bytes.subarray(keyStart - 1, end));
    return true;
  });
  if (!walked) return undefined;
  const length = 5 + pieces.reduce((sum, piece) => sum + piece.length, 0);
  const header = Buffer.alloc(4);
  header.writeInt32LE(length);
  return BSON.deserialize(Buffer.concat([header, ...pieces, Buffer.from([0])]), { promoteValues: false });
}
