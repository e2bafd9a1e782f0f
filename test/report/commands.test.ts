import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectId } from 'mongodb';
import { type CommandShape, migrationCommand } from '../../src/report/report.js';

/** The commands the tool prints for the operator to paste next (the phases): same place, never a password. */
const WEST = { _id: new ObjectId('5f0c0a000000000000000101'), username: 'acme_west' };
const EAST = { _id: new ObjectId('5f0c0a000000000000000102'), username: 'acme_east' };

function shape(overrides: Partial<CommandShape>): CommandShape {
  return {
    request: { sources: ['acme_west', ' 5f0c0a000000000000000102'], destination: 'acme corporate' },
    options: { mergeConflicts: true, convertToAdmin: false, skipInvoices: true },
    target: { kind: 'snapshot', file: '/data/agm.json' },
    historyFile: '/var/log/agm/history.json',
    ...overrides,
  };
}

test('a phase command: the sources as typed (names or ids), the same options, target, history file and map', () => {
  assert.deepEqual(migrationCommand(shape({ configFile: 'map.json' }), [WEST, EAST]), [
    "node scripts/migrateCustomerData.js --sources acme_west,5f0c0a000000000000000102 --destination 'acme corporate' --merge-conflicts --skip-invoices --snapshot /data/agm.json --config map.json --output-file /var/log/agm/history.json",
  ]);
});

test('a URI without a password is given; one with a password is read from MONGODB_URI and never printed', () => {
  const open = migrationCommand(
    shape({ target: { kind: 'mongodb', uri: 'mongodb://db1:27017/agmission?replicaSet=rs0' } }),
    [EAST],
  );
  assert.match(open.join('\n'), / --uri 'mongodb:\/\/db1:27017\/agmission\?replicaSet=rs0' /);
  const secret = migrationCommand(
    shape({ target: { kind: 'mongodb', uri: 'mongodb://ops:s3cr3t-pass@db1:27017/agmission' } }),
    [EAST],
  );
  assert.equal(secret.length, 2);
  assert.match(
    secret[0] ?? '',
    /^# with MONGODB_URI set to the connection string used now \(mongodb:\/\/ops:\*\*\*\*@db1:27017\/agmission\)/,
  );
  assert.doesNotMatch(secret.join('\n'), /s3cr3t-pass/);
  assert.match(
    secret[1] ?? '',
    / --uri "\$MONGODB_URI" /,
    'read from the environment, never the default server',
  );
});
