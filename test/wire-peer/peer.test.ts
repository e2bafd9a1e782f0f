import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  BSON,
  type CollationOptions,
  type Document,
  Double,
  Int32,
  Long,
  MongoClient,
  MongoCompatibilityError,
  Timestamp,
} from 'mongodb';
import { type AnyDocument, commandsOf, eventually, rejectsWith, withPeer } from './helpers.js';
import { startWirePeer } from './index.js';

/** Self-tests of the wire peer, driven by the unmodified driver (raw bytes only where the driver cannot). */

/** An OP_MSG as bytes: flags, a kind 0 body, kind 1 document sequences, and a (dummy) checksum if flagged. */
function opMsg(
  requestId: number,
  flags: number,
  body: Document,
  sequences: Record<string, Document[]> = {},
): Buffer {
  const sections = [Buffer.from([0]), BSON.serialize(body)];
  for (const [field, documents] of Object.entries(sequences)) {
    const payload = Buffer.concat([Buffer.from(`${field}\0`), ...documents.map((d) => BSON.serialize(d))]);
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + payload.length);
    sections.push(Buffer.from([1]), size, payload);
  }
  const flagBytes = Buffer.alloc(4);
  flagBytes.writeUInt32LE(flags);
  const checksum = flags & 1 ? [Buffer.alloc(4)] : [];
  const header = Buffer.alloc(16);
  const message = Buffer.concat([header, flagBytes, ...sections, ...checksum]);
  message.writeInt32LE(message.length, 0);
  message.writeInt32LE(requestId, 4);
  message.writeInt32LE(2013, 12);
  return message;
}

/** A legacy OP_QUERY command on admin.$cmd. */
function opQuery(requestId: number, command: Document): Buffer {
  const numbers = Buffer.alloc(8);
  numbers.writeInt32LE(-1, 4); // numberToSkip 0, numberToReturn -1
  const message = Buffer.concat([
    Buffer.alloc(20),
    Buffer.from('admin.$cmd\0'),
    numbers,
    BSON.serialize(command),
  ]);
  message.writeInt32LE(message.length, 0);
  message.writeInt32LE(requestId, 4);
  message.writeInt32LE(2004, 12);
  return message;
}

/** Sends raw messages on one connection and reads replies: [responseTo, body] per reply. */
async function exchange(port: number, messages: Buffer[], replies: number): Promise<[number, Document][]> {
  const socket = connect(port, '127.0.0.1');
  const received: [number, Document][] = [];
  let buffer = Buffer.alloc(0);
  const done = new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= 4 && buffer.length >= buffer.readInt32LE(0)) {
        const length = buffer.readInt32LE(0);
        // OP_REPLY (1) has 20 bytes of fields before its document, OP_MSG 5 (flags, section kind).
        const bodyAt = buffer.readInt32LE(12) === 1 ? 36 : 21;
        received.push([buffer.readInt32LE(8), BSON.deserialize(buffer.subarray(bodyAt, length))]);
        buffer = buffer.subarray(length);
      }
      if (received.length >= replies) resolve();
    });
  });
  for (const message of messages) socket.write(message);
  await done;
  socket.destroy();
  return received;
}

describe('handshake', () => {
  test('a replica-set primary: legacy OP_QUERY handshake, then OP_MSG; hosts holds the URI host', async () => {
    await withPeer(async (peer, client) => {
      const hello = await client.db('admin').command({ hello: 1 });
      assert.equal(hello.isWritablePrimary, true);
      assert.equal(hello.setName, 'rs0');
      assert.deepEqual(hello.hosts, [`${peer.host}:${peer.port}`]);
      assert.equal(hello.maxWireVersion, 21);
      assert.equal(hello.topologyVersion, undefined, 'no streaming monitoring');
      assert.equal(
        peer.log[0]?.name,
        'ismaster',
        'the first command of a connection is the legacy handshake',
      );
      assert.equal(peer.log[0]?.monitoring, true);
      assert.match(
        peer.uri('db'),
        new RegExp(`^mongodb://127\\.0\\.0\\.1:${peer.port}/db\\?replicaSet=rs0$`),
      );
      const buildInfo = await client.db('admin').command({ buildInfo: 1 });
      assert.equal(buildInfo.version, '7.0.0');
    });
  });

  test('a standalone: no setName, no replicaSet in its URI, and a transaction fails with IllegalOperation', async () => {
    await withPeer(
      async (peer, client) => {
        assert.doesNotMatch(peer.uri('db'), /replicaSet/);
        const hello = await client.db('admin').command({ hello: 1 });
        assert.equal(hello.setName, undefined);
        assert.equal(hello.msg, undefined);
        await client.db('db').collection<AnyDocument>('c').insertOne({ a: 1 });
        const session = client.startSession();
        session.startTransaction();
        await rejectsWith(client.db('db').collection<AnyDocument>('c').findOne({}, { session }), 20);
        await session.endSession();
      },
      { peer: { role: 'standalone' } },
    );
  });

  test('a mongos: isdbgrid, and transactions run', async () => {
    await withPeer(
      async (peer, client) => {
        assert.doesNotMatch(peer.uri(), /replicaSet/);
        assert.equal((await client.db('admin').command({ hello: 1 })).msg, 'isdbgrid');
        const session = client.startSession();
        await session.withTransaction(() =>
          client.db('db').collection<AnyDocument>('c').insertOne({ a: 1 }, { session }),
        );
        await session.endSession();
        assert.equal(await client.db('db').collection<AnyDocument>('c').countDocuments(), 1);
      },
      { peer: { role: 'mongos' } },
    );
  });

  test('a secondary: not writable; refuses writes, and reads unless a secondary may serve them', async () => {
    await withPeer(
      async (_peer, client) => {
        const hello = await client.db('admin').command({ hello: 1 });
        assert.equal(hello.isWritablePrimary, false);
        assert.equal(hello.secondary, true);
        // Not a retryable write (retryWrites off), so no RetryableWriteError label.
        await rejectsWith(client.db('db').collection<AnyDocument>('c').insertOne({ a: 1 }), 10107);
        // A direct connection reads with primaryPreferred, which a secondary serves.
        assert.deepEqual(await client.db('db').collection<AnyDocument>('c').find().toArray(), []);
      },
      { peer: { role: 'secondary' }, client: { directConnection: true, retryWrites: false } },
    );
  });

  test('setRole: a primary turned secondary refuses writes until it is primary again', async () => {
    await withPeer(
      async (peer, client) => {
        const c = client.db('db').collection<AnyDocument>('c');
        await c.insertOne({ a: 1 });
        peer.setRole('secondary');
        await assert.rejects(c.insertOne({ a: 2 }), /primary|Server selection timed out/i);
        peer.setRole('primary');
        await c.insertOne({ a: 3 });
        assert.equal(await c.countDocuments(), 2);
      },
      { client: { serverSelectionTimeoutMS: 1000 } },
    );
  });

  test('a server without hello: the driver handshakes and monitors with isMaster; hello is CommandNotFound', async () => {
    await withPeer(
      async (peer, client) => {
        const monitoring = () => peer.log.filter((entry) => entry.monitoring).map((entry) => entry.name);
        await eventually(() => monitoring().length >= 3, 'handshakes and a heartbeat');
        assert.deepEqual([...new Set(monitoring())], ['ismaster']);
        await rejectsWith(client.db('admin').command({ hello: 1 }), 59);
        assert.equal((await client.db('admin').command({ isMaster: 1 })).ismaster, true);
      },
      { peer: { helloCommand: false }, client: { heartbeatFrequencyMS: 500 } },
    );
  });

  test('a server with hello is monitored with hello', async () => {
    await withPeer(
      async (peer) => {
        await eventually(
          () => peer.log.some((entry) => entry.monitoring && entry.name === 'hello'),
          'a heartbeat with hello',
        );
      },
      { client: { heartbeatFrequencyMS: 500 } },
    );
  });

  test('maxWireVersion 8 (MongoDB 4.2): transactions run, snapshot sessions are refused by the driver', async () => {
    await withPeer(
      async (_peer, client) => {
        assert.equal((await client.db('admin').command({ buildInfo: 1 })).version, '4.2.0');
        const c = client.db('db').collection<AnyDocument>('c');
        const session = client.startSession();
        await session.withTransaction(() => c.insertOne({ a: 1 }, { session }));
        await session.endSession();
        const snapshot = client.startSession({ snapshot: true });
        await assert.rejects(c.find({}, { session: snapshot }).toArray(), (error: unknown) => {
          assert.ok(error instanceof MongoCompatibilityError);
          assert.match(error.message, /Snapshot reads require MongoDB 5\.0 or later/);
          return true;
        });
        await snapshot.endSession();
        // As a 4.2 server would, the peer refuses snapshot reads outside a transaction too.
        await rejectsWith(client.db('db').command({ find: 'c', readConcern: { level: 'snapshot' } }), 72);
      },
      { peer: { maxWireVersion: 8 } },
    );
  });

  test('maxWireVersion 7 (MongoDB 4.0): the driver refuses the server itself, naming its wire version', async () => {
    const peer = await startWirePeer({ maxWireVersion: 7, helloCommand: false });
    const client = new MongoClient(peer.uri('db'), { serverSelectionTimeoutMS: 1000 });
    try {
      await assert.rejects(client.connect(), (error: unknown) => {
        assert.match(
          String((error as Error).message),
          /reports maximum wire version 7, but this version of the Node\.js Driver requires at least 8 \(MongoDB 4\.2\)/,
        );
        return true;
      });
      assert.deepEqual(
        [...new Set(commandsOf(peer).map((e) => e.name))],
        [],
        'no command is sent, only handshakes',
      );
    } finally {
      await client.close();
      await peer.close();
    }
  });

  test('unknown commands answer CommandNotFound', async () => {
    await withPeer(async (_peer, client) => {
      await rejectsWith(client.db('db').command({ frobnicate: 1 }), 59);
      await rejectsWith(client.db('db').command({ findAndModify: 'c', query: {} }), 59);
    });
  });
});

describe('framing', () => {
  test('OP_MSG document sequences (kind 1), a checksum flag, and moreToCome (no reply)', async () => {
    const peer = await startWirePeer();
    try {
      const replies = await exchange(
        peer.port,
        [
          // moreToCome: the peer must not answer this one.
          opMsg(1, 2, { insert: 'c', $db: 'db', writeConcern: { w: 0 } }, { documents: [{ _id: 1 }] }),
          opMsg(2, 1, { insert: 'c', $db: 'db' }, { documents: [{ _id: 2 }, { _id: 3 }] }),
          opMsg(3, 0, { find: 'c', $db: 'db', filter: {} }),
        ],
        2,
      );
      assert.deepEqual(
        replies.map(([responseTo]) => responseTo),
        [2, 3],
      );
      assert.equal(replies[0]?.[1].n, 2);
      assert.deepEqual(replies[1]?.[1].cursor.firstBatch, [{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
    } finally {
      await peer.close();
    }
  });

  test('OP_QUERY is answered with OP_REPLY, for the handshake only: any other command is refused', async () => {
    const peer = await startWirePeer();
    try {
      const replies = await exchange(
        peer.port,
        [opQuery(7, { isMaster: 1, helloOk: true }), opQuery(8, { ping: 1 })],
        2,
      );
      assert.equal(replies[0]?.[0], 7);
      assert.equal(replies[0]?.[1].ismaster, true);
      assert.equal(replies[0]?.[1].helloOk, true);
      assert.equal(replies[1]?.[1].code, 352);
    } finally {
      await peer.close();
    }
  });
});

describe('documents and cursors', () => {
  test('find: firstBatch of 101 by default, getMore with a 64-bit Long id, batchSize honoured', async () => {
    await withPeer(async (peer, client) => {
      const db = client.db('db');
      await db.collection<AnyDocument>('c').insertMany(Array.from({ length: 250 }, (_, i) => ({ _id: i })));
      const first = await db.command({ find: 'c' }, { promoteLongs: false });
      assert.equal(first.cursor.firstBatch.length, 101);
      const id = first.cursor.id;
      assert.ok(id instanceof Long && !id.isZero(), 'a Long cursor id');
      const more = await db.command(
        { getMore: id, collection: 'c', batchSize: 100 },
        { promoteLongs: false },
      );
      assert.equal(more.cursor.nextBatch.length, 100);
      assert.ok(more.cursor.id.equals(id));
      const last = await db.command({ getMore: id, collection: 'c' }, { promoteLongs: false });
      assert.equal(last.cursor.nextBatch.length, 49);
      assert.ok(last.cursor.id instanceof Long && last.cursor.id.isZero(), 'exhausted: id 0 as a Long');
      await rejectsWith(db.command({ getMore: id, collection: 'c' }), 43);

      peer.clearLog();
      const all = await db.collection<AnyDocument>('c').find({}, { batchSize: 60 }).toArray();
      assert.deepEqual(
        all.map((d) => d._id),
        Array.from({ length: 250 }, (_, i) => i),
      );
      assert.deepEqual(
        commandsOf(peer).map((e) => e.name),
        ['find', 'getMore', 'getMore', 'getMore', 'getMore'],
      );
    });
  });

  test('find: filter, sort, skip, limit and projection; stored number types come back as stored', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertMany([
        { _id: 1, n: new Int32(3), acres: new Double(212), tag: 'b' },
        { _id: 2, n: new Int32(1), acres: new Double(1.5), tag: 'a' },
        { _id: 3, n: new Int32(2), acres: new Double(7), tag: 'a' },
      ]);
      const found = await c
        .find({ tag: 'a' }, { sort: { n: -1 }, projection: { tag: 0 }, promoteValues: false })
        .toArray();
      assert.deepEqual(found, [
        { _id: new Int32(3), n: new Int32(2), acres: new Double(7) },
        { _id: new Int32(2), n: new Int32(1), acres: new Double(1.5) },
      ]);
      const page = await c.find({}, { sort: { _id: 1 }, skip: 1, limit: 1, projection: { n: 1 } }).toArray();
      assert.deepEqual(page, [{ _id: 2, n: 1 }]);
    });
  });

  test('countDocuments, aggregate with $group, distinct and count', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertMany([
        { k: 'a', v: 1 },
        { k: 'a', v: 2 },
        { k: 'b', v: 5 },
      ]);
      peer.clearLog();
      assert.equal(await c.countDocuments({ k: 'a' }), 2);
      assert.equal(await c.countDocuments({ k: 'z' }), 0, 'an empty batch is 0');
      assert.equal(await c.countDocuments({}, { skip: 1, limit: 1 }), 1);
      assert.deepEqual(commandsOf(peer)[0]?.command.pipeline, [
        { $match: { k: 'a' } },
        { $group: { _id: 1, n: { $sum: 1 } } },
      ]);
      const sums = await c
        .aggregate([{ $group: { _id: '$k', total: { $sum: '$v' } } }, { $sort: { _id: 1 } }])
        .toArray();
      assert.deepEqual(sums, [
        { _id: 'a', total: 3 },
        { _id: 'b', total: 5 },
      ]);
      assert.deepEqual((await c.distinct('k')).sort(), ['a', 'b']);
      assert.equal(await c.estimatedDocumentCount(), 3);
    });
  });

  test('aggregate: $group keys compare with the collation (strength 2 folds case), as on a server', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertMany([{ k: 'SAM' }, { k: 'sam' }, { k: 'ann' }, { k: null }, {}, { k: 5 }]);
      const groups = async (collation?: CollationOptions) =>
        (
          await c
            .aggregate([{ $group: { _id: { key: { $ifNull: ['$k', null] } }, n: { $sum: 1 } } }], {
              collation,
            })
            .toArray()
        )
          .map((group) => `${String(group._id.key)}:${group.n}`)
          .sort();
      assert.deepEqual(await groups(), ['5:1', 'SAM:1', 'ann:1', 'null:2', 'sam:1']);
      assert.deepEqual(await groups({ locale: 'en', strength: 2 }), ['5:1', 'ann:1', 'null:2', 'sam:2']);
      assert.deepEqual(await groups({ locale: 'en', strength: 3 }), await groups());
    });
  });

  test('updates: operators, pipeline, replacement, multi and upsert, with n and nModified', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertMany([
        { _id: 1, a: 1, b: 2, acres: new Double(10) },
        { _id: 2, a: 3, b: 4, acres: new Double(20) },
      ]);
      const pipeline = await c.updateMany({}, [{ $set: { total: { $add: ['$a', '$b'] } } }]);
      assert.deepEqual([pipeline.matchedCount, pipeline.modifiedCount], [2, 2]);
      const same = await c.updateMany({}, [{ $set: { total: { $add: ['$a', '$b'] } } }]);
      assert.deepEqual([same.matchedCount, same.modifiedCount], [2, 0], 'a no-op is matched, not modified');
      const inc = await c.updateOne({ _id: 1 }, { $inc: { a: 10 } });
      assert.deepEqual([inc.matchedCount, inc.modifiedCount], [1, 1]);
      await c.replaceOne({ _id: 2 }, { replaced: true });
      const upsert = await c.updateOne(
        { _id: 3 },
        { $set: { x: 1 }, $setOnInsert: { created: true } },
        { upsert: true },
      );
      assert.equal(upsert.upsertedId, 3);
      await rejectsWith(c.updateOne({ _id: 1 }, { $set: { _id: 9 } }), 66);
      assert.deepEqual(await c.find({}, { promoteValues: false }).toArray(), [
        { _id: new Int32(1), a: new Int32(11), b: new Int32(2), acres: new Double(10), total: new Int32(3) },
        { _id: new Int32(2), replaced: true },
        { _id: new Int32(3), x: new Int32(1), created: true },
      ]);
      const removed = await c.deleteMany({ _id: { $gte: 2 } });
      assert.equal(removed.deletedCount, 2);
    });
  });

  test('insert: a duplicate _id is an E11000 write error; unordered inserts carry on', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1 });
      const error = await rejectsWith(c.insertOne({ _id: 1 }), 11000);
      assert.match(error.message, /E11000 duplicate key error collection: db\.c index: _id_ dup key/);
      await assert.rejects(c.insertMany([{ _id: 2 }, { _id: 1 }, { _id: 3 }], { ordered: false }));
      assert.equal(await c.countDocuments(), 3);
    });
  });

  test('indexes: specs are stored and listed with _id_; unique indexes are enforced, collation and partial filter included', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('users');
      await c.insertOne({ parent: 1, username: 'John' });
      await c.createIndex(
        { parent: 1, username: 1 },
        { unique: true, collation: { locale: 'en', strength: 2 }, name: 'parent_username' },
      );
      await c.createIndex({ email: 1 }, { unique: true, sparse: true });
      await c.createIndex({ code: 1 }, { unique: true, partialFilterExpression: { active: true } });
      const indexes = await c.listIndexes().toArray();
      assert.deepEqual(
        indexes.map((index) => index.name),
        ['_id_', 'parent_username', 'email_1', 'code_1'],
      );
      assert.deepEqual(indexes[1]?.collation, { locale: 'en', strength: 2 });
      assert.equal(indexes[2]?.sparse, true);
      assert.deepEqual(indexes[3]?.partialFilterExpression, { active: true });

      await rejectsWith(c.insertOne({ parent: 1, username: 'john' }), 11000);
      await c.insertOne({ parent: 2, username: 'john' });
      await c.insertMany([{ parent: 3 }, { parent: 4 }], { ordered: true }); // sparse: no email, no clash
      await c.insertMany([
        { parent: 5, code: 'x', active: false },
        { parent: 6, code: 'x', active: true },
      ]);
      await rejectsWith(c.insertOne({ parent: 7, code: 'x', active: true }), 11000);
      await rejectsWith(c.updateOne({ parent: 2 }, { $set: { parent: 1 } }), 11000);
      await rejectsWith(
        c.createIndex({ active: 1 }, { unique: true }),
        11000,
        [],
        'the data already breaks it',
      );

      await c.dropIndex('email_1');
      assert.equal((await c.listIndexes().toArray()).length, 3);
      await rejectsWith(c.dropIndex('_id_'), 72);
    });
  });

  test('catalog: create, listCollections with filter and nameOnly, drop, listDatabases, dropDatabase', async () => {
    await withPeer(async (_peer, client) => {
      const db = client.db('cat');
      await db.createCollection('users');
      await db.createCollection('jobs');
      await rejectsWith(db.createCollection('jobs'), 48);
      assert.deepEqual(
        (await db.listCollections({ name: 'jobs' }, { nameOnly: true }).toArray()).map((c) => c.name),
        ['jobs'],
      );
      const full = await db.listCollections({ name: 'users' }).toArray();
      assert.equal(full[0]?.type, 'collection');
      await db.collection<AnyDocument>('jobs').drop();
      assert.deepEqual(
        (await db.listCollections().toArray()).map((c) => c.name),
        ['users'],
      );
      const names = (await client.db('admin').admin().listDatabases()).databases.map((d) => d.name);
      assert.ok(names.includes('cat'));
      await db.dropDatabase();
      assert.deepEqual(await db.listCollections().toArray(), []);
    });
  });

  test("config.collections (a mongos's shard keys) is readable with find", async () => {
    await withPeer(
      async (_peer, client) => {
        const catalogue = client.db('config').collection<AnyDocument>('collections');
        await catalogue.insertOne({ _id: 'agmission.jobs', key: { byPuid: 1 } });
        const found = await catalogue.find({ _id: 'agmission.jobs' }).toArray();
        assert.deepEqual(found, [{ _id: 'agmission.jobs', key: { byPuid: 1 } }]);
      },
      { peer: { role: 'mongos' } },
    );
  });

  test('serverStatus reports the cache size set by the test; getParameter the transaction lifetime', async () => {
    await withPeer(
      async (peer, client) => {
        const admin = client.db('admin');
        const cache = async () =>
          (await admin.command({ serverStatus: 1 })).wiredTiger.cache['maximum bytes configured'];
        assert.equal(await cache(), 1024);
        peer.setCacheSizeBytes(2048);
        assert.equal(await cache(), 2048);
        const parameter = await admin.command({ getParameter: 1, transactionLifetimeLimitSeconds: 1 });
        assert.equal(parameter.transactionLifetimeLimitSeconds, 60);
        await rejectsWith(admin.command({ getParameter: 1, noSuchParameter: 1 }), 72);
      },
      { peer: { cacheSizeBytes: 1024 } },
    );
  });
});

describe('server statistics and parameters', () => {
  test('$collStats storageStats: count, sizes from the stored BSON, each index; count; a missing collection is 26', async () => {
    await withPeer(async (_peer, client) => {
      const db = client.db('db');
      const jobs = db.collection<AnyDocument>('jobs');
      const documents = [
        { _id: 1, byPuid: 'a', note: 'x'.repeat(100) },
        { _id: 2, byPuid: 'b' },
        { _id: 3, other: true },
      ];
      await jobs.insertMany(documents);
      await jobs.createIndex({ byPuid: 1 }, { name: 'byPuid_1' });
      await jobs.createIndex(
        { byPuid: 1 },
        { name: 'partial', partialFilterExpression: { _id: { $gt: 1 } } },
      );
      const [stats] = await jobs.aggregate([{ $collStats: { storageStats: {}, count: {} } }]).toArray();
      const size = documents.reduce((sum, doc) => sum + BSON.calculateObjectSize(doc), 0);
      assert.equal(stats?.ns, 'db.jobs');
      assert.equal(stats?.count, 3);
      const storage = stats?.storageStats;
      assert.deepEqual(
        [storage.count, storage.size, storage.avgObjSize, storage.nindexes],
        [3, size, Math.trunc(size / 3), 3],
      );
      // Each entry: the key as BSON ({'0': value}) and an 8-byte record id; a missing field is null.
      const entry = (value: unknown) => BSON.calculateObjectSize({ 0: value }) + 8;
      assert.equal(storage.indexSizes._id_, entry(1) * 3);
      assert.equal(storage.indexSizes.byPuid_1, entry('a') + entry('b') + entry(null));
      assert.equal(storage.indexSizes.partial, entry('b') + entry(null), 'the partial index skips _id 1');
      assert.equal(
        storage.totalIndexSize,
        storage.indexSizes._id_ + storage.indexSizes.byPuid_1 + storage.indexSizes.partial,
      );
      const [projected] = await jobs
        .aggregate([{ $collStats: { storageStats: {} } }, { $project: { avg: '$storageStats.avgObjSize' } }])
        .toArray();
      assert.equal(projected?.avg, Math.trunc(size / 3));
      await rejectsWith(
        db
          .collection('missing')
          .aggregate([{ $collStats: { storageStats: {} } }])
          .toArray(),
        26,
      );
      await rejectsWith(jobs.aggregate([{ $match: {} }, { $collStats: {} }]).toArray(), 40602);
      const session = client.startSession();
      session.startTransaction();
      await rejectsWith(jobs.aggregate([{ $collStats: { storageStats: {} } }], { session }).toArray(), 263);
      await session.abortTransaction();
      await session.endSession();
    });
  });

  test("serverStatus: the cache's size, dirty bytes and update bytes as the test sets them; a mongos has no wiredTiger section", async () => {
    await withPeer(
      async (peer, client) => {
        const cache = async () => (await client.db('admin').command({ serverStatus: 1 })).wiredTiger.cache;
        assert.deepEqual(
          [
            (await cache())['maximum bytes configured'],
            (await cache())['tracked dirty bytes in the cache'],
            (await cache())['bytes allocated for updates'],
          ],
          [1024, 100, 0],
        );
        peer.setCacheUsage({ dirtyBytes: 200, updatesBytes: 50 });
        assert.equal((await cache())['tracked dirty bytes in the cache'], 200);
        assert.equal((await cache())['bytes allocated for updates'], 50);
        peer.setRole('mongos');
        assert.equal((await client.db('admin').command({ serverStatus: 1 })).wiredTiger, undefined);
      },
      { peer: { cacheSizeBytes: 1024, cacheDirtyBytes: 100 } },
    );
  });

  test('getParameter and setParameter: the parameters of each version, changed at run time ("was"); none on mongos', async () => {
    await withPeer(
      async (peer, client) => {
        const admin = client.db('admin');
        const get = (name: string) =>
          admin.command({ getParameter: 1, [name]: 1 }).then((reply) => reply[name]);
        assert.equal(await get('minSnapshotHistoryWindowInSeconds'), 300);
        assert.equal(await get('transactionTooLargeForCacheThreshold'), 0.75);
        assert.equal(await get('wiredTigerEngineRuntimeConfig'), '');
        const set = await admin.command({ setParameter: 1, minSnapshotHistoryWindowInSeconds: 2 });
        assert.equal(set.was, 300);
        assert.equal(await get('minSnapshotHistoryWindowInSeconds'), 2);
        await admin.command({ setParameter: 1, wiredTigerEngineRuntimeConfig: 'eviction_dirty_trigger=10' });
        assert.equal(await get('wiredTigerEngineRuntimeConfig'), 'eviction_dirty_trigger=10');
        await admin.command({ setParameter: 1, transactionLifetimeLimitSeconds: 30 });
        assert.equal(await get('transactionLifetimeLimitSeconds'), 30);
        await rejectsWith(admin.command({ setParameter: 1, noSuchParameter: 1 }), 72);
        const options = await admin.command({ getCmdLineOpts: 1 });
        assert.equal(
          options.parsed.storage.wiredTiger.engineConfig.configString,
          'eviction_updates_trigger=5',
        );
        peer.setRole('mongos');
        await rejectsWith(admin.command({ getParameter: 1, transactionLifetimeLimitSeconds: 1 }), 72);
        assert.deepEqual((await admin.command({ getCmdLineOpts: 1 })).parsed, {});
      },
      { peer: { wiredTigerEngineConfigString: 'eviction_updates_trigger=5' } },
    );
    await withPeer(
      async (_peer, client) => {
        const admin = client.db('admin');
        await rejectsWith(admin.command({ getParameter: 1, transactionTooLargeForCacheThreshold: 1 }), 72);
        assert.equal(
          (await admin.command({ getParameter: 1, minSnapshotHistoryWindowInSeconds: 1 }))
            .minSnapshotHistoryWindowInSeconds,
          300,
        );
      },
      { peer: { maxWireVersion: 17 } },
    );
  });
});

describe('transactions', () => {
  test('commit makes every write visible at once; abort leaves nothing', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      const session = client.startSession();
      session.startTransaction({ readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' } });
      await c.insertOne({ _id: 1 }, { session });
      await c.insertOne({ _id: 2 }, { session });
      assert.equal(await c.countDocuments({}, { session }), 2, 'the transaction sees its own writes');
      assert.equal(await c.countDocuments(), 0, 'nobody else does before the commit');
      await session.commitTransaction();
      assert.equal(await c.countDocuments(), 2);

      session.startTransaction();
      await c.deleteMany({}, { session });
      await session.abortTransaction();
      assert.equal(await c.countDocuments(), 2);
      await session.endSession();
    });
  });

  test('a commit still being applied: plain reads see the version before it, causally consistent and snapshot reads wait for it', async () => {
    const lagMs = 600;
    await withPeer(
      async (peer, client) => {
        const c = client.db('db').collection<AnyDocument>('c');
        await c.insertOne({ _id: 1, v: 'before' });
        const writer = client.startSession();
        writer.startTransaction({ readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' } });
        await c.updateOne({ _id: 1 }, { $set: { v: 'after' } }, { session: writer });
        await c.insertOne({ _id: 2 }, { session: writer });
        await writer.commitTransaction();
        const committedAt = writer.operationTime as Timestamp;
        const started = Date.now();

        assert.equal((await c.findOne({ _id: 1 }))?.v, 'before', 'a plain read does not wait');
        assert.equal(await c.countDocuments({}, { readConcern: { level: 'majority' } }), 1);
        await c.insertOne({ _id: 3 });
        assert.deepEqual(
          (await c.find({}).toArray()).map((d) => d._id),
          [1, 3],
          'a later plain write is seen, the commit still being applied is not',
        );

        const causal = client.startSession({ causalConsistency: true });
        causal.advanceOperationTime(committedAt);
        peer.clearLog();
        const read = await c.findOne({ _id: 1 }, { session: causal, readConcern: { level: 'majority' } });
        assert.equal(read?.v, 'after', "a read after the commit's cluster time waits for it");
        assert.ok(Date.now() - started >= lagMs - 50, 'and it waited');
        const [sent] = commandsOf(peer).filter((e) => e.name === 'find');
        assert.deepEqual(sent?.readConcern, { level: 'majority', afterClusterTime: committedAt });
        assert.equal((await c.findOne({ _id: 1 }))?.v, 'after', 'once applied, every read sees it');
        await causal.endSession();
        await writer.endSession();
      },
      { peer: { commitVisibilityLagMs: lagMs } },
    );
    await withPeer(
      async (_peer, client) => {
        const c = client.db('db').collection<AnyDocument>('c');
        const writer = client.startSession();
        writer.startTransaction();
        await c.insertOne({ _id: 1 }, { session: writer });
        await writer.commitTransaction();
        const snapshot = client.startSession({ snapshot: true });
        assert.equal(
          (await c.find({}, { session: snapshot }).toArray()).length,
          1,
          'a snapshot read waits for the commit',
        );
        await snapshot.endSession();
        await writer.endSession();
      },
      { peer: { commitVisibilityLagMs: lagMs } },
    );
  });

  test("a transaction's open cursors close when it commits", async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertMany(Array.from({ length: 5 }, (_, i) => ({ _id: i })));
      const session = client.startSession();
      session.startTransaction();
      const cursor = c.find({}, { session, batchSize: 2 });
      assert.deepEqual(await cursor.next(), { _id: 0 });
      const id = cursor.id;
      assert.ok(id && !id.isZero(), 'the cursor is still open');
      await session.commitTransaction();
      await rejectsWith(client.db('db').command({ getMore: id, collection: 'c' }), 43);
      await cursor.close();
      await session.endSession();
    });
  });

  test('a transaction reads the data as of its start, plus its own writes', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertMany([{ _id: 1, v: 'old' }]);
      const session = client.startSession();
      session.startTransaction({ readConcern: { level: 'snapshot' } });
      assert.equal((await c.findOne({ _id: 1 }, { session }))?.v, 'old');
      await c.insertOne({ _id: 2 });
      await c.updateOne({ _id: 1 }, { $set: { v: 'new' } });
      assert.equal((await c.findOne({ _id: 1 }, { session }))?.v, 'old', 'a later commit is not seen');
      assert.equal(await c.countDocuments({}, { session }), 1);
      await c.insertOne({ _id: 3 }, { session });
      assert.deepEqual(
        (await c.find({}, { session }).toArray()).map((d) => d._id),
        [1, 3],
      );
      await session.abortTransaction();
      await session.endSession();
    });
  });

  test('a snapshot session reads one point in time while a plain write lands', async () => {
    await withPeer(async (peer, client) => {
      const db = client.db('db');
      await db.collection<AnyDocument>('jobs').insertMany([{ _id: 1 }, { _id: 2 }]);
      await db.collection<AnyDocument>('invoices').insertMany([{ _id: 1 }]);
      const session = client.startSession({ snapshot: true });
      peer.clearLog();
      assert.equal((await db.collection<AnyDocument>('jobs').find({}, { session }).toArray()).length, 2);
      await db.collection<AnyDocument>('jobs').insertOne({ _id: 3 });
      await db.collection<AnyDocument>('invoices').insertOne({ _id: 2 });
      assert.equal((await db.collection<AnyDocument>('jobs').find({}, { session }).toArray()).length, 2);
      assert.equal((await db.collection<AnyDocument>('invoices').find({}, { session }).toArray()).length, 1);
      assert.deepEqual(
        (await db.collection<AnyDocument>('invoices').distinct('_id', {}, { session })).length,
        1,
      );
      await session.endSession();
      assert.equal(await db.collection<AnyDocument>('jobs').countDocuments(), 3);

      const reads = commandsOf(peer).filter((e) => e.readConcern?.level === 'snapshot');
      assert.deepEqual(
        reads.map((e) => e.name),
        ['find', 'find', 'find', 'distinct'],
      );
      assert.deepEqual(reads[0]?.readConcern, { level: 'snapshot' });
      const at = reads[1]?.readConcern?.atClusterTime;
      assert.ok(at instanceof Timestamp, 'later reads name the cluster time of the first');
      assert.ok(reads.slice(1).every((e) => at.equals(e.readConcern?.atClusterTime)));

      // distinct answers atClusterTime at the top level (find and aggregate in the cursor); the driver takes both.
      const second = client.startSession({ snapshot: true });
      assert.deepEqual(
        await db.collection<AnyDocument>('jobs').distinct('_id', {}, { session: second }),
        [1, 2, 3],
      );
      await db.collection<AnyDocument>('jobs').insertOne({ _id: 4 });
      assert.equal(
        (await db.collection<AnyDocument>('jobs').find({}, { session: second }).toArray()).length,
        3,
      );
      await second.endSession();
    });
  });

  test('a write conflicting with a plain write since the snapshot fails with WriteConflict (112), transient', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1, v: 0 });
      const session = client.startSession();
      session.startTransaction();
      await c.findOne({ _id: 1 }, { session });
      await c.updateOne({ _id: 1 }, { $set: { v: 'plain' } });
      await rejectsWith(c.updateOne({ _id: 1 }, { $set: { v: 'txn' } }, { session }), 112, [
        'TransientTransactionError',
      ]);
      // The server aborted it: the next command of that transaction is NoSuchTransaction.
      await rejectsWith(c.findOne({}, { session }), 251, ['TransientTransactionError']);
      await session.abortTransaction().catch(() => {});
      await session.endSession();
      assert.equal((await c.findOne({ _id: 1 }))?.v, 'plain');
    });
  });

  test('of two transactions writing one document, the first writer wins; the second gets WriteConflict', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1, v: 0 });
      const first = client.startSession();
      const second = client.startSession();
      first.startTransaction();
      second.startTransaction();
      await c.updateOne({ _id: 1 }, { $set: { v: 'first' } }, { session: first });
      await rejectsWith(c.updateOne({ _id: 1 }, { $set: { v: 'second' } }, { session: second }), 112, [
        'TransientTransactionError',
      ]);
      await first.commitTransaction();
      assert.equal((await c.findOne({ _id: 1 }))?.v, 'first');
      // A transaction that started before that commit conflicts with it too.
      const third = client.startSession();
      third.startTransaction();
      await c.findOne({}, { session: third });
      const fourth = client.startSession();
      await fourth.withTransaction(() =>
        c.updateOne({ _id: 1 }, { $set: { v: 'fourth' } }, { session: fourth }),
      );
      await rejectsWith(c.updateOne({ _id: 1 }, { $set: { v: 'third' } }, { session: third }), 112, [
        'TransientTransactionError',
      ]);
      for (const session of [first, second, third, fourth]) await session.endSession();
    });
  });

  test('a plain write to a document an open transaction wrote waits until the transaction ends', async () => {
    await withPeer(async (_peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1, v: 0 });
      const session = client.startSession();
      session.startTransaction();
      await c.updateOne({ _id: 1 }, { $inc: { v: 1 } }, { session });
      let done = false;
      const plain = c.updateOne({ _id: 1 }, { $inc: { v: 10 } }).then(() => {
        done = true;
      });
      await delay(150);
      assert.equal(done, false, 'the plain write waits');
      await session.commitTransaction();
      await plain;
      assert.equal((await c.findOne({ _id: 1 }))?.v, 11, 'and then applies on top of the commit');
      await session.endSession();
    });
  });

  test('the first command alone carries readConcern (72 otherwise); no writeConcern inside (72)', async () => {
    await withPeer(async (_peer, client) => {
      const db = client.db('db');
      const session = client.startSession();
      session.startTransaction({ readConcern: { level: 'snapshot' } });
      await db.collection<AnyDocument>('c').findOne({}, { session });
      await rejectsWith(db.command({ find: 'c', readConcern: { level: 'snapshot' } }, { session }), 72);
      await session.abortTransaction();
      session.startTransaction();
      await db.collection<AnyDocument>('c').findOne({}, { session });
      await rejectsWith(
        db.command({ insert: 'c', documents: [{}], writeConcern: { w: 1 } }, { session }),
        72,
      );
      await session.abortTransaction();
      await session.endSession();
    });
  });

  test('after abort, the transaction number is NoSuchTransaction (251); a committed one commits again', async () => {
    await withPeer(async (peer, client) => {
      const db = client.db('db');
      // Without causal consistency the hand-made command below carries no afterClusterTime read concern.
      const session = client.startSession({ causalConsistency: false });
      session.startTransaction();
      await db.collection<AnyDocument>('c').insertOne({ _id: 1 }, { session });
      await session.abortTransaction();
      const txnNumber = Long.fromNumber(session.serverSession?.txnNumber ?? 0);
      await rejectsWith(db.command({ find: 'c', txnNumber, autocommit: false }, { session }), 251, [
        'TransientTransactionError',
      ]);
      // A transaction number that was never started is unknown: NoSuchTransaction too.
      const unknown = txnNumber.add(5);
      await rejectsWith(db.command({ find: 'c', txnNumber: unknown, autocommit: false }, { session }), 251, [
        'TransientTransactionError',
      ]);

      session.startTransaction();
      await db.collection<AnyDocument>('c').insertOne({ _id: 2 }, { session });
      await session.commitTransaction();
      await session.commitTransaction();
      const commits = commandsOf(peer).filter((e) => e.name === 'commitTransaction');
      assert.equal(commits.length, 2);
      assert.equal(commits[1]?.writeConcern?.w, 'majority', 'a retried commit is w:majority');
      await session.endSession();
      assert.equal(await db.collection<AnyDocument>('c').countDocuments(), 1);
    });
  });

  test('a transaction left open past transactionLifetimeLimitSeconds is aborted', async () => {
    await withPeer(
      async (_peer, client) => {
        const c = client.db('db').collection<AnyDocument>('c');
        const session = client.startSession();
        session.startTransaction();
        await c.insertOne({ _id: 1 }, { session });
        await delay(300);
        await rejectsWith(c.insertOne({ _id: 2 }, { session }), 251, ['TransientTransactionError']);
        await session.endSession();
        assert.equal(await c.countDocuments(), 0);
      },
      { peer: { transactionLifetimeLimitSeconds: 0.2 } },
    );
  });

  test('the command log: session fields of every command of a transaction, monitoring marked', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.clearLog();
      assert.equal(peer.log.length, 0);
      const session = client.startSession();
      await session.withTransaction(
        async () => {
          await c.findOne({}, { session });
          await c.insertOne({ _id: 1 }, { session });
        },
        { readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' }, maxCommitTimeMS: 5000 },
      );
      await session.endSession();
      const [find, insert, commit] = commandsOf(peer);
      assert.ok(find && insert && commit);
      assert.match(find.lsid ?? '', /^[0-9a-f]{32}$/);
      for (const entry of [find, insert, commit]) {
        assert.equal(entry.lsid, find.lsid);
        assert.equal(entry.txnNumber, 1);
        assert.equal(entry.autocommit, false);
        assert.equal(entry.monitoring, false);
      }
      assert.deepEqual(
        [find.name, find.db, find.collection, find.startTransaction, find.readConcern],
        ['find', 'db', 'c', true, { level: 'snapshot' }],
      );
      assert.equal(insert.startTransaction, undefined);
      assert.equal(insert.readConcern, undefined);
      assert.deepEqual(
        [commit.name, commit.db, commit.writeConcern, commit.maxTimeMS],
        [
          'commitTransaction',
          'admin',
          // The driver adds wtimeout to the transaction's w:majority on every commit.
          { w: 'majority', wtimeout: 10000 },
          5000,
        ],
      );
      assert.deepEqual(insert.command.documents, [{ _id: 1 }]);
    });
  });

  test('unreachable: every connection closes, the port listens again, the driver reconnects', async () => {
    const peer = await startWirePeer();
    const client = new MongoClient(peer.uri('db'), {
      serverSelectionTimeoutMS: 5000,
      heartbeatFrequencyMS: 500,
    });
    try {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1 });
      const port = peer.port;
      const unknown = new Promise<void>((resolve) => {
        client.on('serverDescriptionChanged', (event) => {
          if (event.newDescription.type === 'Unknown') resolve();
        });
      });
      await peer.stopListening();
      await unknown;
      // The driver knows the server is gone: this insert waits for it instead of failing.
      const during = c.insertOne({ _id: 2 });
      await delay(100);
      await peer.resumeListening();
      await during;
      assert.equal(peer.port, port);
      assert.equal(await c.countDocuments(), 2);
      await peer.unreachable(100);
      assert.equal(await c.countDocuments(), 2);
      const connections = new Set(commandsOf(peer).map((e) => e.connectionId));
      assert.ok(connections.size >= 3, 'the driver reconnected after each outage');
    } finally {
      await client.close();
      await peer.close();
    }
  });
});
