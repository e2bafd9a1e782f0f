import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BSON, MongoClient } from 'mongodb';
import { lastRecord } from '../helpers/assertions.js';
import { wirePeerBackend } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { type Collections, demoData, IDS } from '../helpers/data.js';

/**
 * The driver store keeps every BSON type of what it reads: a before-image read as JS numbers would write a
 * Double 10.0 back as an Int32 10, an Int64 as a double. On the wire peer, through the unmodified driver.
 */
const backend = await wirePeerBackend('mongo-store');
const dir = tempDir();
after(async () => {
  await backend.close();
  dir.remove();
});

const TYPED = {
  rate: new BSON.Double(10),
  negativeZero: new BSON.Double(-0),
  big: BSON.Long.fromString('9007199254740993'),
  small: new BSON.Long(5),
  count: new BSON.Int32(7),
  since: new Date('2021-03-04T05:06:07.089Z'),
  price: BSON.Decimal128.fromString('1.10'),
  nested: {
    ratio: new BSON.Double(2),
    list: [new BSON.Int32(1), new BSON.Double(1), BSON.Long.fromNumber(1)],
  },
};

/** The demo data with every type on the accounts the migration changes whole, and on documents it moves. */
function typedData(): Collections {
  const data = demoData();
  const typed = new Set([IDS.acme_west, IDS.acme_east, IDS.acme_corporate, '5f156b209e3c7a51d23a1c13']);
  for (const user of data.get('users') ?? []) if (typed.has(String(user._id))) Object.assign(user, TYPED);
  for (const job of data.get('jobs') ?? []) {
    if (String(job.byPuid) === IDS.acme_west) Object.assign(job, TYPED);
  }
  return data;
}

/** Every document of the business collections as the server holds it: BSON bytes. */
async function rawDocuments(uri: string): Promise<Record<string, string[]>> {
  const client = await MongoClient.connect(uri);
  try {
    const dump: Record<string, string[]> = {};
    for (const name of ['users', 'jobs', 'invoices']) {
      const raw = (await client
        .db()
        .collection(name)
        .find({}, { raw: true, sort: { _id: 1 } })
        .toArray()) as unknown as Uint8Array[];
      dump[name] = raw.map((bytes) => Buffer.from(bytes).toString('hex'));
    }
    return dump;
  } finally {
    await client.close();
  }
}

test('migrate and roll back through the driver: every account and moved document keeps its BSON types byte for byte', async () => {
  const loaded = await backend.load(typedData());
  assert.equal(loaded.target.kind, 'mongodb');
  const uri = loaded.target.kind === 'mongodb' ? loaded.target.uri : '';
  const before = await rawDocuments(uri);
  const history = join(dir.path, 'round-trip.json');
  const place = [...loaded.args, '--output-file', history];
  const migrated = await runCli([
    '--sources',
    'acme_west,acme_east',
    '--destination',
    'acme_corporate',
    ...place,
  ]);
  assert.equal(migrated.code, 0, migrated.stderr);
  const id = lastRecord(history).id;
  const moved = await rawDocuments(uri);
  assert.notDeepEqual(moved.users, before.users, 'the migration changed the accounts');
  assert.notDeepEqual(moved.jobs, before.jobs, 'and moved jobs');

  const rolledBack = await runCli(['rollback', id, ...place]);
  assert.equal(rolledBack.code, 0, rolledBack.stdout + rolledBack.stderr);
  assert.deepEqual(await rawDocuments(uri), before, 'every document as it was, byte for byte');
});
