import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BSON, Double, Int32, Long } from 'mongodb';
import { parseExtendedJson } from '../../src/store/ejson-file.js';
import { openReadOnlyStore, openStore } from '../../src/store/index.js';
import { parseSnapshot } from '../../src/store/snapshot.js';
import { collect } from '../../src/store/types.js';
import { tempDir } from '../helpers/cli.js';

const dir = tempDir();
after(() => dir.remove());

const USER = '5f0c0a000000000000000101';
const JOB = '65a000000000000000000001';

// `mongoexport --collection users --jsonArray` (relaxed Extended JSON, its default): a number's spelling is
// its type. Int64 values are bare integers, doubles keep their ".0", dates in range are ISO strings.
const relaxedUsers = `[{"_id":{"$oid":"${USER}"},"username":"acme_west","kind":"1","loginCount":42,"negative":-7,"overInt32":2147483648,"beyondDouble":9007199254740993,"negativeLong":-9007199254740993,"credit":40.0,"rate":2.5,"negativeZero":-0.0,"exponent":1e3,"largest":1.7976931348623157e+308,"smallest":5e-324,"createdAt":{"$date":"2025-01-02T03:04:05.000Z"},"oldDate":{"$date":{"$numberLong":"-62135596800000"}},"price":{"$numberDecimal":"10.10"},"nested":{"level":{"count":3,"ratio":1.0}},"matrix":[1,2.0,[3,4.5,{"deep":-1}]],"seenAt":{"$timestamp":{"t":1735787045,"i":2}},"legacyDate":{"$date":1735787045000},"pattern":{"$regularExpression":{"pattern":"^acme","options":"i"}},"blob":{"$binary":{"base64":"AQID","subType":"00"}},"lowest":{"$minKey":1},"flag":true,"nothing":null}]`;
const relaxedJobs = `[{"_id":{"$oid":"${JOB}"},"byPuid":{"$oid":"${USER}"},"acres":12.0,"count":7}]`;

/** What each field must be in the canonical file written back, value and type. */
const EXPECTED_USER = {
  _id: { $oid: USER },
  username: 'acme_west',
  kind: '1',
  loginCount: { $numberInt: '42' },
  negative: { $numberInt: '-7' },
  overInt32: { $numberLong: '2147483648' },
  beyondDouble: { $numberLong: '9007199254740993' },
  negativeLong: { $numberLong: '-9007199254740993' },
  credit: { $numberDouble: '40.0' },
  rate: { $numberDouble: '2.5' },
  negativeZero: { $numberDouble: '-0.0' },
  exponent: { $numberDouble: '1000.0' },
  largest: { $numberDouble: '1.7976931348623157e+308' },
  smallest: { $numberDouble: '5e-324' },
  createdAt: { $date: { $numberLong: '1735787045000' } },
  oldDate: { $date: { $numberLong: '-62135596800000' } },
  price: { $numberDecimal: '10.10' },
  nested: { level: { count: { $numberInt: '3' }, ratio: { $numberDouble: '1.0' } } },
  matrix: [
    { $numberInt: '1' },
    { $numberDouble: '2.0' },
    [{ $numberInt: '3' }, { $numberDouble: '4.5' }, { deep: { $numberInt: '-1' } }],
  ],
  seenAt: { $timestamp: { t: 1735787045, i: 2 } },
  legacyDate: { $date: { $numberLong: '1735787045000' } },
  pattern: { $regularExpression: { pattern: '^acme', options: 'i' } },
  blob: { $binary: { base64: 'AQID', subType: '00' } },
  lowest: { $minKey: 1 },
  flag: true,
  nothing: null,
};

/** Wraps mongoexport's one-collection arrays into a snapshot, as text (as the README does it). */
function snapshotOf(name: string, collections: Record<string, string>, prefix = ''): string {
  const file = join(dir.path, name);
  const body = Object.entries(collections).map(
    ([collection, array]) => `${JSON.stringify(collection)}:${array}`,
  );
  writeFileSync(file, `${prefix}{${body.join(',\n')}}\n`);
  return file;
}

/** Loads the file in an execute store, makes an update that touches none of the typed fields, writes it back. */
async function rewriteWithUnrelatedUpdate(file: string): Promise<Record<string, Record<string, unknown>[]>> {
  const store = await openStore({ kind: 'snapshot', file });
  try {
    await store.transaction(async (tx) => {
      assert.deepEqual(await tx.updateMany('jobs', {}, { $set: { status: 'done' } }), {
        matched: 1,
        modified: 1,
      });
    });
  } finally {
    await store.close();
  }
  // Canonical Extended JSON holds every number as a string inside its type: plain JSON shows them all.
  return JSON.parse(readFileSync(file, 'utf8'));
}

test('relaxed mongoexport output keeps every number as mongoexport meant it, through an update and a write', async () => {
  const file = snapshotOf('relaxed.json', { users: relaxedUsers, jobs: relaxedJobs });
  const written = await rewriteWithUnrelatedUpdate(file);
  assert.deepEqual(written.users, [EXPECTED_USER]);
  assert.deepEqual(written.jobs, [
    {
      _id: { $oid: JOB },
      byPuid: { $oid: USER },
      acres: { $numberDouble: '12.0' },
      count: { $numberInt: '7' },
      status: 'done',
    },
  ]);
});

test('the values in memory have those types: Int32, exact Long, Double (40.0 too), -0, Date', () => {
  const [user] = parseSnapshot(`{"users":${relaxedUsers}}`, 'inline').get('users') ?? [];
  assert.ok(user?.loginCount instanceof Int32 && user.loginCount.value === 42);
  assert.ok(user?.beyondDouble instanceof Long);
  assert.equal(user.beyondDouble.toString(), '9007199254740993');
  assert.ok(user.credit instanceof Double && user.credit.value === 40);
  assert.ok(user.negativeZero instanceof Double && Object.is(user.negativeZero.value, -0));
  assert.ok(user.exponent instanceof Double && user.exponent.value === 1000);
  assert.ok(user.createdAt instanceof Date && user.createdAt.getTime() === 1735787045000);
  assert.ok(user.nested.level.ratio instanceof Double);
  assert.ok(user.matrix[2][1] instanceof Double && user.matrix[2][0] instanceof Int32);
});

test('canonical mongoexport output (--jsonFormat=canonical) loads exactly as before and is written back unchanged', async () => {
  const canonicalUsers = JSON.stringify([EXPECTED_USER]);
  const canonicalJobs = `[{"_id":{"$oid":"${JOB}"},"byPuid":{"$oid":"${USER}"},"acres":{"$numberDouble":"12.0"},"count":{"$numberInt":"7"}}]`;
  const text = `{"users":${canonicalUsers},"jobs":${canonicalJobs}}`;
  assert.equal(
    BSON.EJSON.stringify(parseExtendedJson(text), { relaxed: false }),
    BSON.EJSON.stringify(BSON.EJSON.parse(text, { relaxed: false }), { relaxed: false }),
    'the same values as the driver reads from canonical input',
  );
  const file = snapshotOf('canonical.json', { users: canonicalUsers, jobs: canonicalJobs });
  const written = await rewriteWithUnrelatedUpdate(file);
  assert.deepEqual(written.users, [EXPECTED_USER]);
  assert.deepEqual(written.jobs?.[0]?.acres, { $numberDouble: '12.0' });
});

test('a UTF-8 byte order mark at the start is accepted, by preview and by execute', async () => {
  const file = snapshotOf('bom.json', { users: relaxedUsers, jobs: relaxedJobs }, '\uFEFF');
  const preview = await openReadOnlyStore({ kind: 'snapshot', file });
  assert.equal((await collect(preview.find('users', {})))[0]?.username, 'acme_west');
  await preview.close();
  const written = await rewriteWithUnrelatedUpdate(file);
  assert.deepEqual(written.users, [EXPECTED_USER]);
});

test('a file that is not JSON is refused, saying where and what to do', async () => {
  const file = snapshotOf('truncated.json', { users: '[{"_id": 1,' });
  await assert.rejects(
    openStore({ kind: 'snapshot', file }),
    /^UsageError: Snapshot .*truncated\.json is not valid Extended JSON: .*position \d+; export it again \(see "Snapshot mode" in the README\)$/,
  );
});
