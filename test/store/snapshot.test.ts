import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BSON, type Document, Int32, ObjectId } from 'mongodb';
import { openReadOnlyStore, openStore } from '../../src/store/index.js';
import { MongoReadOnlyStore } from '../../src/store/mongo.js';
import { parseSnapshot, serializeSnapshot } from '../../src/store/snapshot.js';
import { collect } from '../../src/store/types.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

test('canonical and relaxed Extended JSON load with their types, and are written back canonical', async () => {
  const id = new ObjectId();
  const relaxed = `{"jobs":[{"_id":{"$oid":"${id.toHexString()}"},"n":1,"big":{"$numberLong":"9007199254740993"},"acres":2.5,"at":{"$date":"2025-01-02T03:04:05.000Z"},"price":{"$numberDecimal":"10.10"}}]}`;
  const file = join(dir.path, 'types.json');
  writeFileSync(file, relaxed);
  const store = await openStore({ kind: 'snapshot', file });
  await store.transaction(async (tx) => {
    assert.deepEqual(await tx.updateMany('jobs', { _id: id }, { $set: { status: 'done' } }), {
      matched: 1,
      modified: 1,
    });
  });
  const written = readFileSync(file, 'utf8');
  assert.match(written, /"n": \{\s*"\$numberInt": "1"/);
  assert.match(written, /"big": \{\s*"\$numberLong": "9007199254740993"/, 'no precision lost');
  assert.match(written, /"acres": \{\s*"\$numberDouble": "2.5"/);
  assert.match(written, /"at": \{\s*"\$date": \{\s*"\$numberLong": "1735787045000"/);
  assert.match(written, /"price": \{\s*"\$numberDecimal": "10.10"/);
  const reread = parseSnapshot(written, file).get('jobs')?.[0];
  assert.ok(reread?._id instanceof ObjectId && reread._id.equals(id));
  assert.equal(reread?.status, 'done');
});

test('ObjectId equality in filters; updateMany reports matched and modified like the server', async () => {
  const a = new ObjectId();
  const b = new ObjectId();
  const file = join(dir.path, 'ids.json');
  writeFileSync(
    file,
    serializeSnapshot(
      new Map([
        [
          'jobs',
          [
            { byPuid: a },
            { byPuid: new ObjectId(a.toHexString()) },
            { byPuid: b },
            { byPuid: a.toHexString() },
          ],
        ],
      ]),
    ),
  );
  const store = await openStore({ kind: 'snapshot', file });
  assert.equal(await store.count('jobs', { byPuid: a }), 2, 'equal ObjectIds match; a hex string does not');
  await store.transaction(async (tx) => {
    assert.deepEqual(await tx.updateMany('jobs', { byPuid: { $in: [a] } }, { $set: { byPuid: b } }), {
      matched: 2,
      modified: 2,
    });
    assert.deepEqual(await tx.updateMany('jobs', { byPuid: b }, { $set: { byPuid: b } }), {
      matched: 3,
      modified: 0,
    });
  });
});

test('documents read are copies, as from a server: later updates do not change them', async () => {
  const id = new ObjectId();
  const file = join(dir.path, 'copies.json');
  writeFileSync(file, serializeSnapshot(new Map([['users', [{ _id: id, active: true, n: new Int32(7) }]]])));
  const store = await openStore({ kind: 'snapshot', file });
  await store.transaction(async (tx) => {
    const [before] = await collect(tx.find('users', { _id: id }));
    await tx.updateMany('users', { _id: id }, { $set: { active: false } });
    assert.equal(before?.active, true);
    assert.ok(before?.n instanceof Int32, 'types survive the copy');
    const [after] = await collect(tx.find('users', { _id: id }));
    assert.equal(after?.active, false);
  });
});

test('a transaction that throws leaves the file byte-for-byte as it was', async () => {
  const file = join(dir.path, 'rollback.json');
  writeFileSync(file, serializeSnapshot(new Map([['jobs', [{ _id: new ObjectId(), x: 1 }]]])));
  const bytes = readFileSync(file);
  const store = await openStore({ kind: 'snapshot', file });
  await assert.rejects(
    store.transaction(async (tx) => {
      await tx.updateMany('jobs', {}, { $set: { x: 2 } });
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.deepEqual(readFileSync(file), bytes);
});

test('a file changed on disk during the transaction is not overwritten', async () => {
  const file = join(dir.path, 'raced.json');
  writeFileSync(file, serializeSnapshot(new Map([['jobs', [{ x: 1 }]]])));
  const store = await openStore({ kind: 'snapshot', file });
  const intruder = serializeSnapshot(new Map([['jobs', [{ x: 99 }]]]));
  await assert.rejects(
    store.transaction(async (tx) => {
      await tx.updateMany('jobs', {}, { $set: { x: 2 } });
      writeFileSync(file, intruder);
    }),
    /changed on disk during the run; nothing was written/,
  );
  assert.equal(readFileSync(file, 'utf8'), intruder);
});

test('the preview store has no way to write, on either back end', async () => {
  const file = join(dir.path, 'ro.json');
  writeFileSync(file, serializeSnapshot(new Map([['users', []]])));
  const store = await openReadOnlyStore({ kind: 'snapshot', file });
  for (const method of [
    'updateMany',
    'replaceOne',
    'insertMany',
    'insertOne',
    'transaction',
    'assertTransactional',
    'ensureCollections',
    'settle',
  ]) {
    assert.equal(method in store, false, `snapshot preview store has ${method}`);
    assert.equal(method in MongoReadOnlyStore.prototype, false, `mongo preview store has ${method}`);
  }
  assert.equal(BSON.EJSON.stringify(await store.count('users', {})), '0');
});

test('a snapshot holding two documents with one _id is refused at load, naming the collection and the id', async () => {
  const data = demoData();
  const jobs = data.get('jobs') ?? [];
  const twin = jobs[3] as Document;
  jobs.push({ ...twin, name: 'the same _id again' });
  const file = join(dir.path, 'duplicate-id.json');
  writeFileSync(file, serializeSnapshot(data));
  const bytes = readFileSync(file);
  const history = join(dir.path, 'duplicate-id.history.json');
  const migrate = ['--sources', 'acme_west', '--destination', 'acme_corporate', '--snapshot', file];
  for (const args of [['--preview', ...migrate], migrate, ['verify', 'x', '--snapshot', file]]) {
    const result = await runCli([...args, '--output-file', history]);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr,
      `Error: Snapshot ${file}: collection "jobs" holds two documents with _id {"$oid":"${String(twin._id)}"}; an _id is unique in a collection, so fix the export (keep one of them) and run again\n`,
    );
    assert.deepEqual(readFileSync(file), bytes);
    assert.equal(existsSync(history), false);
    assert.equal(existsSync(`${file}.lock`), false);
  }
  // An ObjectId and its hex string are two different _ids, as on a server.
  const distinct = join(dir.path, 'id-spellings.json');
  const id = new ObjectId();
  writeFileSync(distinct, serializeSnapshot(new Map([['jobs', [{ _id: id }, { _id: id.toHexString() }]]])));
  const store = await openReadOnlyStore({ kind: 'snapshot', file: distinct });
  assert.equal(await store.count('jobs', {}), 2);
  await store.close();
});
