import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { MongoWriteConcernError } from 'mongodb';
import { type AnyDocument, commandsOf, rejectsWith, withPeer } from './helpers.js';

/** The majority commit point and write concern waits, driven by the unmodified driver. */

/** Settles to 'pending' when `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, delay(ms).then(() => 'pending' as const)]);
}

describe('a majority that cannot be reached', () => {
  test('w:majority with wtimeout: the write lands on the primary, then WriteConcernFailed (64) with errInfo.wtimeout', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.setMajorityReachable(false);
      const started = Date.now();
      await assert.rejects(
        c.insertOne({ _id: 1 }, { writeConcern: { w: 'majority', wtimeout: 300 } }),
        (error: unknown) => {
          assert.ok(error instanceof MongoWriteConcernError, String(error));
          assert.equal(error.code, 64);
          assert.equal(error.codeName, 'WriteConcernFailed');
          assert.equal(error.errInfo?.wtimeout, true);
          assert.equal(error.errorLabels.length, 0, 'not retryable');
          return true;
        },
      );
      assert.ok(Date.now() - started >= 300, 'it waited for the wtimeout');
      assert.deepEqual(await c.findOne({}), { _id: 1 }, 'a local read sees it');
      assert.equal(
        await c.findOne({}, { readConcern: { level: 'majority' } }),
        null,
        'a majority read does not',
      );
      peer.setMajorityReachable(true);
      assert.deepEqual(await c.findOne({}, { readConcern: { level: 'majority' } }), { _id: 1 });
    });
  });

  test('w:majority without wtimeout waits until the majority is back; w:1 does not wait', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.setMajorityReachable(false);
      await c.insertOne({ _id: 1 }, { writeConcern: { w: 1 } });
      const waiting = c.insertOne({ _id: 2 }, { writeConcern: { w: 'majority' } });
      assert.equal(await within(waiting, 300), 'pending', 'no answer while the majority is away');
      peer.setMajorityReachable(true);
      assert.equal((await waiting).acknowledged, true);
    });
  });

  test("maxTimeMS bounds the wait: the write is applied, the reply's writeConcernError is MaxTimeMSExpired (50)", async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.setMajorityReachable(false);
      await assert.rejects(
        c.insertOne({ _id: 1 }, { writeConcern: { w: 'majority' }, maxTimeMS: 200 }),
        (error: unknown) => {
          assert.ok(error instanceof MongoWriteConcernError, String(error));
          assert.equal(error.code, 50);
          return true;
        },
      );
      assert.equal(await c.countDocuments(), 1);
    });
  });

  test('MongoDB 5.0+ waits for a majority by default (no writeConcern sent); 4.4 answers at w:1', async () => {
    for (const [maxWireVersion, waits] of [
      [21, true],
      [9, false],
    ] as const) {
      await withPeer(
        async (peer, client) => {
          const c = client.db('db').collection<AnyDocument>('c');
          peer.setMajorityReachable(false);
          peer.clearLog();
          const insert = c.insertOne({ _id: 1 }, { maxTimeMS: 200 });
          if (waits) await assert.rejects(insert, MongoWriteConcernError);
          else await insert;
          assert.equal(commandsOf(peer).find((e) => e.name === 'insert')?.writeConcern, undefined);
        },
        { peer: { maxWireVersion } },
      );
    }
  });

  test("a commit waits like any majority write: the driver's wtimeout, then an unknown commit result; committed on the primary only", async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.setMajorityReachable(false);
      const session = client.startSession();
      session.startTransaction({ writeConcern: { w: 'majority' }, maxCommitTimeMS: 300 });
      await c.insertOne({ _id: 1 }, { session });
      await assert.rejects(session.commitTransaction(), (error: unknown) => {
        assert.ok(error instanceof MongoWriteConcernError, String(error));
        assert.equal(error.code, 50, 'maxCommitTimeMS ran out first');
        assert.ok(error.hasErrorLabel('UnknownTransactionCommitResult'));
        return true;
      });
      await session.endSession();
      assert.equal(await c.countDocuments(), 1, 'committed on the primary');
      assert.equal(await c.findOne({}, { readConcern: { level: 'majority' } }), null);
    });
  });

  test('snapshot reads and transactions read majority-committed data: a write the majority lacks is invisible, and writing over it conflicts', async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1, v: 'majority' });
      peer.setMajorityReachable(false);
      await c.updateOne({ _id: 1 }, { $set: { v: 'primary only' } }, { writeConcern: { w: 1 } });
      const snapshot = client.startSession({ snapshot: true });
      assert.equal((await c.findOne({ _id: 1 }, { session: snapshot }))?.v, 'majority');
      await snapshot.endSession();
      const session = client.startSession();
      session.startTransaction({ readConcern: { level: 'snapshot' } });
      assert.equal((await c.findOne({ _id: 1 }, { session }))?.v, 'majority');
      await rejectsWith(c.updateOne({ _id: 1 }, { $set: { v: 'tx' } }, { session }), 112, [
        'TransientTransactionError',
      ]);
      const local = client.startSession();
      local.startTransaction({ readConcern: { level: 'local' } });
      assert.equal((await c.findOne({ _id: 1 }, { session: local }))?.v, 'primary only');
      // An abort waits for the (default: majority) write concern too.
      peer.setMajorityReachable(true);
      await local.endSession();
      await session.endSession();
    });
  });

  test("a retried write answered from the session's history meets the fail point's writeConcernError again, and runs once", async () => {
    await withPeer(async (peer, client) => {
      const c = client.db('db').collection<AnyDocument>('c');
      peer.failCommand({
        mode: { times: 2 },
        data: {
          failCommands: ['insert'],
          writeConcernError: { code: 91, codeName: 'ShutdownInProgress', errmsg: 'shutting down' },
        },
      });
      peer.clearLog();
      await assert.rejects(c.insertOne({ _id: 1 }), (error: unknown) => {
        assert.ok(error instanceof MongoWriteConcernError, String(error));
        assert.equal(error.code, 91);
        assert.ok(error.hasErrorLabel('RetryableWriteError'));
        return true;
      });
      const inserts = commandsOf(peer).filter((e) => e.name === 'insert');
      assert.equal(inserts.length, 2, 'the driver retried once');
      assert.equal(inserts[0]?.txnNumber, inserts[1]?.txnNumber);
      assert.equal(peer.failCommand({ mode: 'off' }), 2, 'both answers carried it');
      assert.equal(await c.countDocuments(), 1, 'the retry did not insert again');
    });
  });
});

describe('the snapshot history window (minSnapshotHistoryWindowInSeconds)', () => {
  test('a snapshot read at an atClusterTime older than the window is SnapshotTooOld (239); a new snapshot after an idle spell reads', async () => {
    await withPeer(async (_peer, client) => {
      const admin = client.db('admin');
      await admin.command({ setParameter: 1, minSnapshotHistoryWindowInSeconds: 1 });
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1 });
      await delay(1_200);
      const session = client.startSession({ snapshot: true });
      assert.deepEqual(await c.findOne({}, { session }), { _id: 1 }, 'read at a fresh cluster time');
      assert.deepEqual(await c.findOne({}, { session }), { _id: 1 }, 'within the window');
      await delay(1_200);
      const tooOld = await rejectsWith(c.findOne({}, { session }), 239);
      assert.match(tooOld.message, /is older than the oldest available timestamp/);
      await session.endSession();
    });
  });

  test('while a majority is missing, history behind the commit point is kept: the stale snapshot still reads', async () => {
    await withPeer(async (peer, client) => {
      await client.db('admin').command({ setParameter: 1, minSnapshotHistoryWindowInSeconds: 1 });
      const c = client.db('db').collection<AnyDocument>('c');
      await c.insertOne({ _id: 1 });
      peer.setMajorityReachable(false);
      const session = client.startSession({ snapshot: true });
      assert.deepEqual(await c.findOne({}, { session }), { _id: 1 });
      await delay(1_200);
      assert.deepEqual(await c.findOne({}, { session }), { _id: 1 });
      await session.endSession();
      peer.setMajorityReachable(true);
    });
  });
});
