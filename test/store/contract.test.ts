import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ObjectId } from 'mongodb';
import { RuntimeError } from '../../src/shared/errors.js';
import { openStore } from '../../src/store/index.js';
import { MongoStore } from '../../src/store/mongo.js';
import { collect } from '../../src/store/types.js';
import { allBackends, testOn } from '../helpers/backends.js';
import { startMongoStandalone, withDatabase } from '../helpers/mongo-server.js';
import { startWirePeer } from '../wire-peer/index.js';

/** The behaviours of a MongoDB server the snapshot back end must match, checked on every back end. */
for (const backend of await allBackends('contract')) {
  describe(`store contract on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    after(() => backend.close());
    const a = new ObjectId();
    const b = new ObjectId();
    const data = () =>
      new Map([
        [
          'jobs',
          [
            { _id: new ObjectId(), byPuid: a, markedDelete: true },
            { _id: new ObjectId(), byPuid: new ObjectId(a.toHexString()) },
            { _id: new ObjectId(), byPuid: b },
            { _id: new ObjectId(), byPuid: a.toHexString() },
          ],
        ],
      ]);

    it('ObjectId equality in filters: equal ids match, a hex string is not an ObjectId', async () => {
      const store = await openStore((await backend.load(data())).target);
      try {
        assert.equal(await store.count('jobs', { byPuid: a }), 2);
        assert.equal(await store.count('jobs', { byPuid: { $in: [new ObjectId(a.toHexString())] } }), 2);
        assert.equal(await store.count('jobs', { byPuid: a.toHexString() }), 1);
      } finally {
        await store.close();
      }
    });

    it('updateMany counts matched and modified the way the server does, soft-deleted documents included', async () => {
      const loaded = await backend.load(data());
      const store = await openStore(loaded.target);
      try {
        await store.assertTransactional();
        await store.transaction(async (tx) => {
          assert.deepEqual(await tx.updateMany('jobs', { byPuid: a }, { $set: { byPuid: b } }), {
            matched: 2,
            modified: 2,
          });
          assert.deepEqual(await tx.updateMany('jobs', { byPuid: b }, { $set: { byPuid: b } }), {
            matched: 3,
            modified: 0,
          });
        });
        const jobs = (await loaded.dump()).jobs ?? [];
        assert.equal(jobs.filter((job) => job.markedDelete === true && b.equals(job.byPuid)).length, 1);
      } finally {
        await store.close();
      }
    });

    it('a document read inside a transaction does not change when a later update runs', async () => {
      const store = await openStore((await backend.load(data())).target);
      try {
        await store.transaction(async (tx) => {
          const before = await collect(tx.find('jobs', { byPuid: b }));
          assert.equal(before.length, 1, 'the read returned the one job of b');
          await tx.updateMany('jobs', { byPuid: b }, { $set: { status: 'moved' } });
          assert.equal(before[0]?.status, undefined);
        });
      } finally {
        await store.close();
      }
    });

    it('a find sorted by one field and projected to it and _id: equal values in natural order; an update of the filter just read matches what that read found, and only while nothing changed', async () => {
      const ids = [new ObjectId(), new ObjectId(), new ObjectId(), new ObjectId(), new ObjectId()];
      const [first, second, third, fourth, fifth] = ids as [ObjectId, ObjectId, ObjectId, ObjectId, ObjectId];
      const jobs = [
        { _id: first, byPuid: b, status: 'x' },
        { _id: second, byPuid: a },
        { _id: third, byPuid: b, markedDelete: true },
        { _id: fourth, byPuid: a },
        { _id: fifth, byPuid: new ObjectId() },
      ];
      const store = await openStore((await backend.load(new Map([['jobs', jobs]]))).target);
      const filter = { byPuid: { $in: [a, b] } };
      const read = (tx: Parameters<Parameters<typeof store.transaction>[0]>[0], direction: 1 | -1) =>
        collect(tx.find('jobs', filter, { projection: { _id: 1, byPuid: 1 }, sort: { byPuid: direction } }));
      try {
        await store.transaction(async (tx) => {
          assert.deepEqual(
            (await read(tx, 1)).map((job) => [String(job._id), String(job.byPuid), Object.keys(job).join()]),
            [second, fourth, first, third].map((id) => [
              String(id),
              String(id === first || id === third ? b : a),
              '_id,byPuid',
            ]),
          );
          assert.deepEqual(
            (await read(tx, -1)).map((job) => String(job._id)),
            [first, third, second, fourth].map(String),
          );
          assert.deepEqual(await tx.updateMany('jobs', filter, { $set: { byPuid: a } }), {
            matched: 4,
            modified: 2,
          });
          assert.deepEqual(
            (await read(tx, 1)).map((job) => String(job._id)),
            [first, second, third, fourth].map(String),
          );
          await tx.updateMany('jobs', { _id: fifth }, { $set: { byPuid: a } });
          assert.deepEqual(await tx.updateMany('jobs', filter, { $set: { byPuid: b } }), {
            matched: 5,
            modified: 5,
          });
          assert.equal(await tx.count('jobs', { byPuid: b }), 5);
        });
      } finally {
        await store.close();
      }
    });

    it('a transaction that throws changes nothing', async () => {
      const loaded = await backend.load(data());
      const before = await loaded.state();
      const store = await openStore(loaded.target);
      try {
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.updateMany('jobs', {}, { $set: { touched: true } });
            throw new Error('injected');
          }),
          /injected/,
        );
      } finally {
        await store.close();
      }
      assert.equal(await loaded.state(), before);
    });
  });
}

/** A standalone server cannot run transactions: the tool must say so before writing anything. */
async function assertStandaloneRefused(uri: string): Promise<void> {
  const store = await MongoStore.open(uri);
  try {
    await assert.rejects(store.assertTransactional(), (error: unknown) => {
      assert.ok(error instanceof RuntimeError);
      assert.match(
        error.message,
        /is a standalone server and cannot run transactions; use a replica set or mongos/,
      );
      return true;
    });
  } finally {
    await store.close();
  }
}

test('a standalone server is refused before any write (wire peer as a standalone)', async () => {
  const peer = await startWirePeer({ role: 'standalone' });
  try {
    await assertStandaloneRefused(peer.uri('agm_standalone'));
    const sent = peer.log.filter((entry) => !entry.monitoring).map((entry) => entry.name);
    assert.ok(
      sent.length > 0 && sent.every((name) => name === 'hello'),
      `only hello, no write: ${sent.join(', ')}`,
    );
  } finally {
    await peer.close();
  }
});

const standalone = await startMongoStandalone();
after(async () => {
  if ('stop' in standalone) await standalone.stop();
});
test(
  'a standalone server is refused before any write (MongoDB)',
  'skip' in standalone ? { skip: standalone.skip } : {},
  async () => {
    if ('skip' in standalone) return;
    await assertStandaloneRefused(withDatabase(standalone.uri, 'agm_standalone'));
  },
);
