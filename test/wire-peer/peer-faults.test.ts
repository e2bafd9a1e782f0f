import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { MongoClient, MongoServerError, MongoWriteConcernError } from 'mongodb';
import { type AnyDocument, commandsOf, eventually, rejectsWith, withPeer } from './helpers.js';

/** The failCommand fail point, with the server's command shape, driven by the unmodified driver. */

describe('failCommand fail point', () => {
  test('{times: N} fails the next N targeted commands; the reply count says how often it fired', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      const reply = await client.db('admin').command({
        configureFailPoint: 'failCommand',
        mode: { times: 2 },
        data: { failCommands: ['find'], errorCode: 2 },
      });
      assert.equal(reply.count, 0);
      await c.insertOne({ _id: 1 }); // not targeted, not counted
      await rejectsWith(c.findOne({}), 2);
      await rejectsWith(c.findOne({}), 2);
      assert.deepEqual(await c.findOne({}), { _id: 1 });
      assert.equal(peer.failCommand({ mode: 'off' }), 2);
    });
  });

  test('{skip: N} lets N targeted commands through, then fails every one; off stops it', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.failCommand({ mode: { skip: 1 }, data: { failCommands: ['insert'], errorCode: 8 } });
      await c.insertOne({ _id: 1 });
      await rejectsWith(c.insertOne({ _id: 2 }), 8);
      await rejectsWith(c.insertOne({ _id: 3 }), 8);
      assert.equal(peer.failCommand({ mode: 'off' }), 2);
      await c.insertOne({ _id: 4 });
      assert.equal(await c.countDocuments(), 2);
    });
  });

  test('alwaysOn fails every targeted command, configured through the driver like on a server', async () => {
    await withPeer(async (_peer, client) => {
      const admin = client.db('admin');
      await admin.command({
        configureFailPoint: 'failCommand',
        mode: 'alwaysOn',
        data: { failCommands: ['serverStatus'], errorCode: 13 },
      });
      await rejectsWith(admin.command({ serverStatus: 1 }), 13);
      await rejectsWith(admin.command({ serverStatus: 1 }), 13);
      assert.equal((await admin.command({ configureFailPoint: 'failCommand', mode: 'off' })).count, 2);
      assert.ok((await admin.command({ serverStatus: 1 })).wiredTiger);
      await rejectsWith(client.db('db').command({ configureFailPoint: 'failCommand', mode: 'off' }), 13);
    });
  });

  test("labels: the server's own by default, given ones replace them, an empty list removes them", async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      const inTransaction = async (labels: string[]) => {
        const session = client.startSession();
        session.startTransaction();
        try {
          await rejectsWith(c.insertOne({ _id: 1 }, { session }), 112, labels);
        } finally {
          await session.abortTransaction();
          await session.endSession();
        }
      };
      peer.failCommand({ mode: { times: 1 }, data: { failCommands: ['insert'], errorCode: 112 } });
      await inTransaction(['TransientTransactionError']);
      peer.failCommand({
        mode: { times: 1 },
        data: { failCommands: ['insert'], errorCode: 112, errorLabels: ['Custom'] },
      });
      await inTransaction(['Custom']);
      peer.failCommand({
        mode: { times: 1 },
        data: { failCommands: ['insert'], errorCode: 112, errorLabels: [] },
      });
      await inTransaction([]);
      // Outside a transaction WriteConflict carries no transient label.
      peer.failCommand({ mode: { times: 1 }, data: { failCommands: ['insert'], errorCode: 112 } });
      await rejectsWith(c.insertOne({ _id: 1 }), 112);
    });
  });

  test('a retriable code on a retryable write is labelled RetryableWriteError, and the driver retries it once', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.failCommand({ mode: { times: 1 }, data: { failCommands: ['insert'], errorCode: 91 } });
      peer.clearLog();
      await c.insertOne({ _id: 1 });
      const inserts = commandsOf(peer).filter((e) => e.name === 'insert');
      assert.equal(inserts.length, 2);
      assert.equal(inserts[0]?.txnNumber, inserts[1]?.txnNumber, 'the retry is the same retryable write');
      assert.equal(await c.countDocuments(), 1);
    });
  });

  test('closeConnection closes the connection without an answer: a read is retried on a new one', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1 });
      peer.failCommand({ mode: { times: 1 }, data: { failCommands: ['find'], closeConnection: true } });
      peer.clearLog();
      assert.deepEqual(await c.findOne({}), { _id: 1 });
      const finds = commandsOf(peer).filter((e) => e.name === 'find');
      assert.equal(finds.length, 2);
      assert.notEqual(finds[0]?.connectionId, finds[1]?.connectionId);
    });
  });

  test('closeConnection before an error code: a server closes, it never answers the code', async () => {
    await withPeer(
      async (peer, client) => {
        peer.failCommand({
          mode: { times: 1 },
          data: { failCommands: ['ping'], closeConnection: true, errorCode: 2 },
        });
        await assert.rejects(client.db('admin').command({ ping: 1 }), (error: unknown) => {
          assert.ok(!(error instanceof MongoServerError), 'a network error, not the error code');
          return true;
        });
      },
      { client: { retryReads: false } },
    );
  });

  test('an error code before a writeConcernError: the command fails and does not run', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.failCommand({
        mode: { times: 1 },
        data: {
          failCommands: ['insert'],
          errorCode: 8,
          writeConcernError: { code: 64, errmsg: 'timed out' },
        },
      });
      await rejectsWith(c.insertOne({ _id: 1 }), 8);
      assert.equal(await c.countDocuments(), 0);
    });
  });

  test('writeConcernError on commitTransaction: the transaction IS committed, the commit result unknown', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.failCommand({
        mode: { times: 1 },
        data: {
          failCommands: ['commitTransaction'],
          writeConcernError: {
            code: 64,
            errmsg: 'waiting for replication timed out',
            errInfo: { wtimeout: true },
          },
        },
      });
      const session = client.startSession();
      session.startTransaction({ writeConcern: { w: 'majority' } });
      await c.insertOne({ _id: 1 }, { session });
      await assert.rejects(session.commitTransaction(), (error: unknown) => {
        assert.ok(error instanceof MongoWriteConcernError);
        assert.equal(error.code, 64);
        assert.ok(error.hasErrorLabel('UnknownTransactionCommitResult'));
        assert.ok(!error.hasErrorLabel('TransientTransactionError'));
        return true;
      });
      await session.endSession();
      assert.equal(await c.countDocuments(), 1, 'committed all the same');
    });
  });

  test('writeConcernError on commit inside withTransaction: the commit is retried and answered ok', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.failCommand({
        mode: { times: 1 },
        data: { failCommands: ['commitTransaction'], writeConcernError: { code: 64, errmsg: 'timed out' } },
      });
      peer.clearLog();
      const session = client.startSession();
      await session.withTransaction(() => c.insertOne({ _id: 1 }, { session }), {
        writeConcern: { w: 'majority' },
      });
      await session.endSession();
      assert.deepEqual(
        commandsOf(peer).map((e) => e.name),
        ['insert', 'commitTransaction', 'commitTransaction'],
      );
      assert.equal(await c.countDocuments(), 1);
    });
  });

  test('writeConcernError on a plain write: the write took effect, the reply says the concern failed', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.failCommand({
        mode: { times: 1 },
        data: { failCommands: ['insert'], writeConcernError: { code: 64, errmsg: 'timed out' } },
      });
      await assert.rejects(c.insertOne({ _id: 1 }), MongoWriteConcernError);
      assert.equal(await c.countDocuments(), 1);
    });
  });

  test('blockConnection holds the command for blockTimeMS; other connections go on', async () => {
    await withPeer(async (peer, client) => {
      peer.failCommand({
        mode: { times: 1 },
        data: { failCommands: ['find'], blockConnection: true, blockTimeMS: 400 },
      });
      const started = Date.now();
      const blocked = client.db('db').collection('c').findOne({});
      await delay(20);
      await client.db('admin').command({ ping: 1 });
      const pingAt = Date.now() - started;
      await blocked;
      const blockedFor = Date.now() - started;
      assert.ok(blockedFor >= 400, `the find took ${blockedFor} ms`);
      assert.ok(pingAt < 300, `the ping on another connection took ${pingAt} ms`);
    });
  });

  test('appName: only the named application is hit', async () => {
    await withPeer(
      async (peer, client) => {
        peer.failCommand({
          mode: 'alwaysOn',
          data: { failCommands: ['ping'], errorCode: 2, appName: 'other-app' },
        });
        await client.db('admin').command({ ping: 1 });
        const other = new MongoClient(peer.uri(), { appName: 'other-app', serverSelectionTimeoutMS: 3000 });
        try {
          await rejectsWith(other.db('admin').command({ ping: 1 }), 2);
        } finally {
          await other.close();
        }
      },
      { client: { appName: 'this-app' } },
    );
  });

  test('namespace: only commands on that namespace are hit (a find on config.collections, not on another collection)', async () => {
    await withPeer(
      async (peer, client) => {
        peer.failCommand({
          mode: 'alwaysOn',
          data: { failCommands: ['find'], errorCode: 13, namespace: 'config.collections' },
        });
        await client.db('config').collection('other').findOne({});
        await client.db('db').collection('collections').findOne({});
        await rejectsWith(client.db('config').collection('collections').findOne({}), 13);
        assert.equal(peer.failCommand({ mode: 'off' }), 1);
      },
      { peer: { role: 'mongos' } },
    );
  });

  test("monitoring's hello is never hit by a fail point that does not name it; one naming hello is obeyed", async () => {
    await withPeer(
      async (peer, client) => {
        peer.failCommand({
          mode: 'alwaysOn',
          data: { failCommands: ['find', 'insert'], closeConnection: true },
        });
        const heartbeats = () => peer.log.filter((e) => e.monitoring && e.name === 'hello').length;
        await eventually(() => heartbeats() >= 2, 'two heartbeats');
        await client.db('admin').command({ ping: 1 });
        assert.equal(peer.failCommand({ mode: 'off' }), 0, 'it never fired');
        peer.failCommand({ mode: { times: 1 }, data: { failCommands: ['hello'], errorCode: 91 } });
        const seen = heartbeats();
        await eventually(() => heartbeats() > seen, 'the next heartbeat');
        assert.equal(peer.failCommand({ mode: 'off' }), 1, 'the next heartbeat was hit');
      },
      { client: { heartbeatFrequencyMS: 500 } },
    );
  });
});
