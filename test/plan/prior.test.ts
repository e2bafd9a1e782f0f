import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectId } from 'mongodb';
import { arrivalsOf, finalMerges } from '../../src/plan/prior.js';

test('merged accounts map to where their references end: a survivor merged away later passes them on', () => {
  const [a, b, c, d] = [new ObjectId(), new ObjectId(), new ObjectId(), new ObjectId()];
  const final = finalMerges([
    { from: a, to: b },
    { from: b, to: c },
    { from: d, to: c },
  ]);
  const target = (from: ObjectId) => final.find((merge) => merge.from.equals(from))?.to.toHexString();
  assert.equal(target(a), c.toHexString());
  assert.equal(target(b), c.toHexString());
  assert.equal(target(d), c.toHexString());
  assert.equal(final.length, 3);
  const loop = finalMerges([
    { from: a, to: b },
    { from: b, to: a },
  ]);
  assert.equal(loop.length, 2, 'a cycle (corrupt data) ends instead of looping');
});

test('arrivals: the accounts moving in, converted customers (not on a follow-up), and what earlier runs brought', () => {
  const west = { _id: new ObjectId(), username: 'west', followUp: false };
  const east = { _id: new ObjectId(), username: 'east', followUp: true };
  const [ray, kim, old] = [new ObjectId(), new ObjectId(), new ObjectId()];
  const arrivals = arrivalsOf({
    sources: [west, east],
    options: { convertToAdmin: true },
    expectations: {
      movingAccounts: [
        { _id: ray, from: 'west' },
        { _id: kim, from: 'east' },
      ],
    },
    prior: [
      {
        id: 'earlier',
        startedAt: new Date(),
        sources: [east],
        merges: [],
        arrived: [
          { _id: old, source: east },
          { _id: new ObjectId(), source: { _id: new ObjectId(), username: 'not-this-run' } },
        ],
      },
    ],
  });
  assert.deepEqual(
    arrivals.map((arrival) => [arrival._id.toHexString(), arrival.source.username]),
    [
      [ray.toHexString(), 'west'],
      [kim.toHexString(), 'east'],
      [west._id.toHexString(), 'west'],
      [old.toHexString(), 'east'],
    ],
  );
});
