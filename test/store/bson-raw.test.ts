import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Query, updateMany } from 'mingo';
import type { Modifier, PipelineStage } from 'mingo/updater';
import { BSON, type Document, Double, Int32, ObjectId } from 'mongodb';
import { decodeFields, rawTest, rawUpdate } from '../../src/store/bson-raw.js';

const A = new ObjectId('5f0c0a000000000000000101');
const B = new ObjectId('5f0c0a000000000000000100');
const C = new ObjectId('5f0c0a000000000000000103');

/** Documents with the field in every shape a collection may hold it: the raw answers must be mingo's. */
const documents: Document[] = [
  { _id: new ObjectId(), f: A },
  { _id: new ObjectId(), meta: { f: A, list: [1, 2] }, f: B, tail: 'x' },
  { _id: 'text-id', f: A.toHexString() },
  { _id: new ObjectId(), f: [A, C] },
  { _id: new ObjectId(), other: 1 },
  { _id: new ObjectId(), f: null },
  { _id: new ObjectId(), f: new Int32(1), markedDelete: true },
  { _id: new ObjectId(), f: new Double(1.5), markedDelete: false },
  { _id: new ObjectId(), f: 'short', markedDelete: new Int32(1) },
  { _id: new ObjectId(), re: /a.b/i, bin: new BSON.Binary(Buffer.from('abc')), at: new Date(5), f: C },
];

const filters: Document[] = [
  { f: A },
  { f: A.toHexString() },
  { f: { $in: [A, B] } },
  { f: { $in: [A, A.toHexString()], $not: { $type: 'array' } } },
  { f: { $in: [C] }, markedDelete: { $ne: true } },
  { markedDelete: true },
  { markedDelete: { $ne: true } },
  { $or: [{ f: { $in: [A] } }, { f: { $in: [B], $not: { $type: 'array' } } }] },
  { _id: { $in: [documents[0]?._id, 'text-id'] }, f: { $in: [A, A.toHexString()] } },
  { f: { $eq: 'short' } },
];

test('a filter decided on the bytes agrees with mingo, and leaves to mingo what it cannot decide', () => {
  let decided = 0;
  for (const filter of filters) {
    const raw = rawTest(filter);
    assert.ok(raw, `${JSON.stringify(filter)} is one of the shapes decided on bytes`);
    const query = new Query(filter);
    for (const document of documents) {
      const answer = raw(Buffer.from(BSON.serialize(document)));
      if (answer === undefined) {
        assert.ok(Array.isArray(document.f), 'only the array documents are left to mingo here');
        continue;
      }
      decided += 1;
      assert.equal(
        answer,
        query.test(BSON.deserialize(BSON.serialize(document), { promoteValues: false })),
        `${BSON.EJSON.stringify(filter)} on ${BSON.EJSON.stringify(document)}`,
      );
    }
  }
  assert.ok(decided > 80);
  assert.equal(rawTest({ 'meta.f': A }), undefined, 'a dotted path is mingo’s');
  assert.equal(rawTest({ f: { $gt: 1 } }), undefined);
  assert.equal(rawTest({ f: { $in: [1, 2] } }), undefined, 'numbers compare across types: mingo’s');
});

/** A branch of the plan's `$switch` (MongoDB names its result field "then"). */
function branch(from: unknown, to: unknown): Document {
  return Object.fromEntries([
    ['case', { $eq: ['$f', { $literal: from }] }],
    ['then', { $literal: to }],
  ]);
}

const updates: (Document | Document[])[] = [
  { $set: { f: C } },
  { $set: { f: 'other' } },
  [
    {
      $set: {
        f: {
          $switch: {
            branches: [branch(A, C), branch(A.toHexString(), C.toHexString())],
            default: '$f',
          },
        },
      },
    },
  ],
];

test('an update made in place on the bytes gives mingo’s document, or is left to mingo', () => {
  let patched = 0;
  for (const update of updates) {
    const raw = rawUpdate(update);
    assert.ok(raw);
    for (const document of documents) {
      const bytes = Buffer.from(BSON.serialize(document));
      const modified = raw(bytes);
      if (modified === undefined) continue;
      patched += 1;
      const one = [BSON.deserialize(BSON.serialize(document), { promoteValues: false })];
      const result = updateMany(one, {}, update as Modifier<Document> | PipelineStage[]);
      assert.equal(modified, result.modifiedCount > 0);
      assert.equal(
        BSON.EJSON.stringify(BSON.deserialize(bytes, { promoteValues: false })),
        BSON.EJSON.stringify(one[0]),
      );
    }
  }
  assert.ok(patched >= 6);
  assert.equal(rawUpdate({ $set: { f: C, g: 1 } }), undefined);
  assert.equal(rawUpdate({ $push: { f: C } }), undefined);
});

test('a projection decoded from its fields alone is the document’s, in its order', () => {
  const document = documents[9] as Document;
  const bytes = Buffer.from(BSON.serialize(document));
  assert.deepEqual(decodeFields(bytes, new Set(['f', '_id'])), { _id: document._id, f: C });
});
