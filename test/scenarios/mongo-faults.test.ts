import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, describe } from 'node:test';
import { type Document, ObjectId } from 'mongodb';
import { lastRecord, readHistoryFile } from '../helpers/assertions.js';
import { type Backend, journalOf, mongoBackend, testOn, wirePeerBackend } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';
import { during, faultRunner, peerSuite, withClient } from '../helpers/faults.js';

/**
 * What the tool says when a MongoDB server answers badly, and what the data and the history say afterwards.
 * Every test runs on the wire peer (the unmodified driver against a wire-protocol peer: the client side) and,
 * when one is available, on a real replica set started with enableTestCommands (fail points, each scoped to
 * the run's own appName so that other test files sharing the server are never hit).
 */
const ARGS = ['--sources', 'acme_west,acme_east', '--destination', 'acme_corporate'];
const SOURCES = [IDS.acme_west, IDS.acme_east];

function migrated(after: Record<string, Document[]>): boolean {
  return SOURCES.every((id) => after.users?.find((u) => String(u._id) === id)?.markedDelete === true);
}

const backends: Backend[] = [await wirePeerBackend('faults'), await mongoBackend('faults')];

for (const backend of backends) {
  describe(`MongoDB failures on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    const runner = faultRunner(backend, dir.path, 'faults', ARGS);
    const setUp = () => runner(demoData());

    it('a transient error on an update: the work runs again on fresh reads and the result is right', async () => {
      const { loaded, history, failPoint, cli } = await setUp();
      await failPoint({ times: 1 }, { failCommands: ['update'], errorCode: 112 }, async () => {
        const result = await cli();
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /transaction retried by MongoDB \(attempt 2\); re-reading/);
        assert.ok(migrated(await loaded.dump()));
        assert.equal(lastRecord(history).status, 'completed');
      });
    });

    it('a dropped connection on commit: the commit is retried once and the migration completes', async () => {
      const { loaded, history, failPoint, cli } = await setUp();
      await failPoint(
        { times: 1 },
        { failCommands: ['commitTransaction'], closeConnection: true },
        async () => {
          const result = await cli();
          assert.equal(result.code, 0, result.stderr);
          assert.ok(migrated(await loaded.dump()));
          assert.equal(lastRecord(history).status, 'completed');
          assert.equal(readHistoryFile(history).length, 1);
        },
      );
    });

    it('NoSuchTransaction on commit once: the whole transaction runs again and completes', async () => {
      const { loaded, history, failPoint, cli } = await setUp();
      await failPoint({ times: 1 }, { failCommands: ['commitTransaction'], errorCode: 251 }, async () => {
        const result = await cli();
        assert.equal(result.code, 0, result.stderr);
        assert.ok(migrated(await loaded.dump()));
        assert.equal(lastRecord(history).status, 'completed');
      });
    });

    it('aborted every time: the retries are bounded, exit 1, nothing committed, a failed record', async () => {
      const { loaded, history, failPoint, cli, before } = await setUp();
      await failPoint('alwaysOn', { failCommands: ['commitTransaction'], errorCode: 251 }, async () => {
        const result = await cli();
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          /Error: MongoDB aborted the transaction 3 times \(last: .*\); nothing was committed\. It conflicts with other writes or is too large: migrate fewer sources per run/,
        );
        assert.equal(await loaded.state(), before);
        assert.equal(lastRecord(history).status, 'failed');
      });
    });

    it('MaxTimeMSExpired on commit, the commit not done: the server is asked, confirms nothing committed, exit 1', async () => {
      const { loaded, history, failPoint, cli, before } = await setUp();
      await failPoint({ times: 1 }, { failCommands: ['commitTransaction'], errorCode: 50 }, async () => {
        const result = await cli();
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /outcome is unknown .*; asking the server whether it committed/);
        assert.match(
          result.stderr,
          /Error: The commit was not confirmed .*; the server confirms nothing was committed \(journal [0-9a-f-]{36} fenced\)/,
        );
        assert.doesNotMatch(result.stderr, /rolled back/);
        assert.equal(await loaded.state(), before);
        const record = lastRecord(history);
        assert.equal(record.status, 'failed');
        const [fence] = await journalOf(loaded.target);
        assert.equal(fence?._id, record.id);
        assert.equal(fence?.type, 'fence', 'the migration id can never commit now');
      });
    });

    it('a write-concern error on commit, the commit done: the server is asked, confirms it, COMPLETED, exit 0', async () => {
      const { loaded, history, failPoint, cli } = await setUp();
      const writeConcernError = { code: 50, codeName: 'MaxTimeMSExpired', errmsg: 'replication timed out' };
      await failPoint({ times: 1 }, { failCommands: ['commitTransaction'], writeConcernError }, async () => {
        const result = await cli();
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /the server confirms the migration committed/);
        assert.ok(migrated(await loaded.dump()));
        const record = lastRecord(history);
        assert.equal(record.status, 'completed');
        assert.ok(record.journal && record.journal.documents > 0, 'the completed record holds what moved');
      });
    });

    it('an unknown commit and a server that cannot be asked: status "unknown", how to check, exit 5', async () => {
      const { history, failPoint, setFailPoint, cli } = await setUp();
      await failPoint({ times: 1 }, { failCommands: ['commitTransaction'], errorCode: 50 }, async () => {
        const result = await cli({
          openStore: during(
            () =>
              setFailPoint('alwaysOn', { failCommands: ['insert', 'find'], closeConnection: true }).then(
                () => {},
              ),
            'after-transaction-fails',
          ),
        });
        assert.equal(result.code, 5, result.stderr);
        assert.match(result.stderr, /Error: The outcome of migration [0-9a-f-]{36} is UNKNOWN/);
        assert.match(
          result.stderr,
          /To find out: node scripts\/migrateCustomerData\.js verify [0-9a-f-]{36}/,
        );
        const record = lastRecord(history);
        assert.equal(record.status, 'unknown');
        assert.equal(record.error?.exitCode, 5);
        assert.match(record.check ?? '', /db\.customer_migrations\.findOne\(\{ _id: "[0-9a-f-]{36}" \}\)/);
      });
    });

    it('a concurrent plain write to a document the migration moves: a write conflict, a re-run, the write kept', async () => {
      const { loaded, history, cli } = await setUp();
      const job = (await loaded.dump()).jobs?.find((j) => String(j.byPuid) === IDS.acme_west) as Document;
      const result = await cli({
        openStore: during((uri) =>
          withClient(uri, async (client) => {
            await client
              .db()
              .collection('jobs')
              .updateOne({ _id: job._id }, { $set: { note: 'edited meanwhile' } });
          }),
        ),
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /transaction retried by MongoDB \(attempt 2\)/);
      const moved = (await loaded.dump()).jobs?.find((j) => String(j._id) === String(job._id));
      assert.equal(moved?.note, 'edited meanwhile');
      assert.equal(String(moved?.byPuid), IDS.acme_corporate);
      assert.equal(lastRecord(history).status, 'completed');
    });

    it('the destination deactivated while the migration runs: the migration stops, nothing committed, exit 1', async () => {
      const { loaded, history, cli } = await setUp();
      const result = await cli({
        openStore: during((uri) =>
          withClient(uri, async (client) => {
            await client
              .db()
              .collection('users')
              .updateOne(
                { _id: new ObjectId(IDS.acme_corporate) },
                { $set: { markedDelete: true, active: false } },
              );
          }),
        ),
      });
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /The customers changed while the migration ran \(Destination customer acme_corporate .* is already deactivated/,
      );
      const after = await loaded.dump();
      assert.equal(migrated(after), false);
      assert.equal(lastRecord(history).status, 'failed');
    });

    it('a job created for a source while the migration ran is reported as left behind, and recorded', async () => {
      const { loaded, history, cli } = await setUp();
      const late = new ObjectId();
      const result = await cli({
        openStore: during((uri) =>
          withClient(uri, async (client) => {
            await client
              .db()
              .collection('jobs')
              .insertOne({ _id: late, byPuid: new ObjectId(IDS.acme_west) });
          }),
        ),
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        /WARNING: after the commit, documents still reference a source or a merged account \(jobs\.byPuid: 1\).*Run the same command again: a follow-up run moves only what was left behind/,
      );
      assert.deepEqual(lastRecord(history).stragglers, { 'jobs.byPuid': 1 });
      const followUp = await cli();
      assert.equal(followUp.code, 0, followUp.stderr);
      assert.equal(
        String((await loaded.dump()).jobs?.find((j) => late.equals(j._id))?.byPuid),
        IDS.acme_corporate,
      );
    });

    it('interrupted inside the transaction: it is aborted on the server, nothing committed, exit 1', async () => {
      const { loaded, history, before, cli } = await setUp();
      const signals = new EventEmitter();
      const result = await cli({
        signals,
        openStore: during(async () => {
          signals.emit('SIGTERM', 'SIGTERM');
        }),
      });
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /Error: Interrupted \(SIGTERM\) before the commit: the transaction was aborted, nothing was committed/,
      );
      assert.equal(await loaded.state(), before);
      assert.equal(lastRecord(history).status, 'failed');
    });

    it('an error on a read before the transaction is said plainly (credentials), exit 1', async () => {
      const { cli, history, failPoint } = await setUp();
      await failPoint({ times: 1 }, { failCommands: ['find'], errorCode: 13 }, async () => {
        const result = await cli();
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          /refused the credentials or the operation \(.*\); check the URI's user and its roles/,
        );
        assert.equal(lastRecord(history).status, 'failed');
      });
    });
  });
}

/** What only a wire-level peer can play: roles, old servers, a failover, indexes and shard keys it reports. */
peerSuite('server answers only the wire peer can play', ({ onPeer, test }) => {
  test('a standalone, a secondary and a set without a primary are refused with what to do, exit 1', async () => {
    await onPeer({ role: 'standalone' }, async (standalone) => {
      const result = await standalone.cli(ARGS);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /is a standalone server and cannot run transactions; use a replica set or mongos/,
      );
      assert.equal(standalone.peer.log.filter((e) => ['update', 'insert'].includes(e.name)).length, 0);
    });
    await onPeer({ role: 'secondary', params: { directConnection: 'true' } }, async (secondary) => {
      const result = await secondary.cli(ARGS);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /is not the primary of replica set rs0; connect with the replica set URI/);
    });
    await onPeer({ role: 'secondary', params: { serverSelectionTimeoutMS: '1500' } }, async (noPrimary) => {
      const result = await noPrimary.cli(ARGS);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /Replica set rs0 of MongoDB .* has no primary \(an election may be in progress/,
      );
    });
  });

  test('mongos: a reference field in a shard key refuses the plan before anything is written, exit 3', async () => {
    await onPeer({ role: 'mongos' }, async (mongos) => {
      await withClient(mongos.uri, (client) =>
        client
          .db('config')
          .collection('collections')
          .insertOne({ _id: 'agmission.jobs' as never, key: { byPuid: 1 } }),
      );
      mongos.peer.clearLog();
      const preview = await mongos.cli(['--preview', ...ARGS]);
      assert.equal(preview.code, 3, preview.stderr);
      assert.match(
        preview.stdout,
        /jobs\.byPuid is part of the shard key of jobs; a multi-document update cannot change it/,
      );
      const execute = await mongos.cli(ARGS);
      assert.equal(execute.code, 3);
      assert.equal(
        mongos.peer.log.filter((e) => ['update', 'insert', 'commitTransaction'].includes(e.name)).length,
        0,
      );
    });
  });

  test('a server before hello (4.2.0-4.2.9): isMaster answers, the preview reads in a read-only transaction', async () => {
    await onPeer({ helloCommand: false, maxWireVersion: 8 }, async (old) => {
      old.peer.clearLog();
      const preview = await old.cli(['--preview', ...ARGS]);
      assert.equal(preview.code, 0, preview.stderr);
      const sent = old.peer.log.filter((e) => !e.monitoring);
      const started = sent.filter((e) => e.startTransaction === true);
      assert.equal(started.length, 1, 'one read-only transaction');
      assert.deepEqual(started[0]?.readConcern, { level: 'snapshot' });
      assert.deepEqual(
        sent
          .filter((e) => ['commitTransaction', 'abortTransaction', 'update', 'insert'].includes(e.name))
          .map((e) => e.name),
        ['abortTransaction'],
      );
      const execute = await old.cli(ARGS);
      assert.equal(execute.code, 0, execute.stderr);
      assert.equal(lastRecord(old.history).status, 'completed');
    });
  });

  test('unindexed reference fields are warned about; a unique index the plan would break refuses it', async () => {
    await onPeer({}, async (indexed) => {
      const preview = await indexed.cli(['--preview', ...ARGS]);
      assert.match(
        preview.stdout,
        /WARNING: jobs\.byPuid has no index starting with it: .*db\.jobs\.createIndex\(\{ byPuid: 1 \}\)/,
      );
      await withClient(indexed.uri, async (client) => {
        const db = client.db('agmission');
        await db.collection('users').createIndex({ parent: 1 });
        await db
          .collection('jobs')
          .createIndexes([{ key: { byPuid: 1 } }, { key: { client: 1 } }, { key: { pilot: 1 } }]);
        await db.collection('invoices').createIndexes([{ key: { customer: 1 } }, { key: { client: 1 } }]);
      });
      const quiet = await indexed.cli(['--preview', ...ARGS]);
      assert.doesNotMatch(quiet.stdout, /has no index/);
      await withClient(indexed.uri, (client) =>
        client
          .db('agmission')
          .collection('users')
          .createIndex({ parent: 1, username: 1 }, { unique: true, name: 'parent_username' }),
      );
      const merge = ['--sources', 'acme_aviation', '--destination', 'consolidated_ag', '--merge-conflicts'];
      const refused = await indexed.cli(['--preview', ...merge]);
      assert.equal(refused.code, 3, refused.stderr);
      assert.match(
        refused.stdout,
        /unique index parent_username on users would be violated under the destination \(username: "pilot_mike"\)/,
      );
    });
  });

  test('a server that does not answer at all fails fast, naming the host (exit 1, a failed record)', async () => {
    await onPeer({ params: { serverSelectionTimeoutMS: '1000' } }, async (gone) => {
      await gone.peer.stopListening();
      const started = Date.now();
      const result = await gone.cli(ARGS);
      assert.ok(Date.now() - started < 10_000);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /Error: Cannot reach MongoDB 127\.0\.0\.1:\d+\/agmission (within 1 s )?\(connect ECONNREFUSED .*\); check --uri or MONGODB_URI/,
      );
      assert.equal(lastRecord(gone.history).status, 'failed');
    });
  });

  test('a commit still being applied when the recount reads (a multi-shard commit): the recount waits for it, no false stragglers', async () => {
    const lagMs = 1_500;
    await onPeer({ commitVisibilityLagMs: lagMs }, async (sharded) => {
      const started = Date.now();
      const result = await sharded.cli(ARGS);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /WARNING: after the commit/);
      assert.equal(lastRecord(sharded.history).stragglers, undefined);
      assert.ok(Date.now() - started >= lagMs, 'the recount waited for the commit to be applied');
      const sent = sharded.peer.log.filter((e) => !e.monitoring);
      const commit = sent.findIndex((e) => e.name === 'commitTransaction');
      const recount = sent.slice(commit + 1).filter((e) => e.name === 'aggregate');
      assert.ok(recount.length > 0, 'the recount read after the commit');
      for (const entry of recount) assert.ok(entry.readConcern?.afterClusterTime, `${entry.collection}`);
    });
  });

  test('a failover in the middle of the transaction: the work runs again on the new primary and completes', async () => {
    await onPeer({}, async (failover) => {
      const result = await runCli([...ARGS, '--uri', failover.uri, '--output-file', failover.history], {
        openStore: during(() => failover.peer.unreachable(1_500)),
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /transaction retried by MongoDB \(attempt 2\)/);
      assert.equal(lastRecord(failover.history).status, 'completed');
    });
  });
});
