import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectId } from 'mongodb';
import { findConflicts, type Tree } from '../../src/plan/conflicts.js';
import type { Account } from '../../src/plan/resolve.js';

function tree(username: string, accounts: [string, string, boolean?][]): Tree {
  const customer: Account = { _id: new ObjectId(), username, kind: '1' };
  return {
    customer,
    accounts: accounts.map(([name, kind, markedDelete]) => ({
      _id: new ObjectId(),
      username: name,
      kind,
      parent: customer._id,
      ...(markedDelete === undefined ? {} : { markedDelete }),
    })),
    followUp: false,
  };
}

test('a source sub-account clashing with a destination account, case-insensitively and trimmed', () => {
  const destination = tree('dest', [['John', '3']]);
  const source = tree('src', [
    [' john ', '3'],
    ['other', '3'],
  ]);
  const conflicts = findConflicts(destination, [source], false);
  assert.equal(conflicts.length, 1);
  const [conflict] = conflicts;
  assert.equal(conflict?.incoming._id, source.accounts[0]?._id);
  assert.equal(conflict?.existing._id, destination.accounts[0]?._id);
  assert.deepEqual(conflict?.resolution, {
    action: 'merge',
    survivor: destination.accounts[0]?._id,
    loser: source.accounts[0]?._id,
  });
});

test("the destination customer's own username counts as an account under it", () => {
  const conflicts = findConflicts(tree('dest', []), [tree('src', [['DEST', '3']])], false);
  assert.equal(conflicts.length, 1);
  assert.equal(conflicts[0]?.existing.kind, '1');
  assert.equal(conflicts[0]?.resolution.action, 'block', 'a kind 3 cannot merge into the customer');
});

test('sub-accounts of two sources clash; the first listed source keeps the name', () => {
  const a = tree('a', [['sam', '5']]);
  const b = tree('b', [['Sam', '5']]);
  const c = tree('c', [['SAM', '5']]);
  const conflicts = findConflicts(tree('dest', []), [a, b, c], false);
  assert.equal(conflicts.length, 2, 'one entry per incoming account that collides');
  for (const conflict of conflicts) assert.equal(conflict.existing._id, a.accounts[0]?._id);
});

test('soft-deleted accounts never conflict, on either side; missing markedDelete means live', () => {
  const destination = tree('dest', [
    ['gone', '3', true],
    ['live', '3'],
  ]);
  const source = tree('src', [
    ['gone', '3'],
    ['LIVE', '3', true],
  ]);
  assert.deepEqual(findConflicts(destination, [source], false), []);
});

test('two accounts of one source already coexist and are not a new conflict', () => {
  assert.deepEqual(
    findConflicts(
      tree('dest', []),
      [
        tree('src', [
          ['Pat', '3'],
          ['pat', '5'],
        ]),
      ],
      false,
    ),
    [],
  );
});

test('different kinds block; converted customers block on their own username', () => {
  const kinds = findConflicts(tree('dest', [['lee', '3']]), [tree('src', [['lee', '9']])], false);
  assert.equal(kinds[0]?.resolution.action, 'block');
  const source = tree('west', []);
  const converted = findConflicts(tree('dest', [['west', '2']]), [source], true);
  assert.equal(converted.length, 1);
  assert.equal(converted[0]?.incoming.convertedCustomer, true);
  assert.equal(converted[0]?.resolution.action, 'block');
  assert.deepEqual(
    findConflicts(tree('dest', [['west', '2']]), [source], false),
    [],
    'without conversion no clash',
  );
});
