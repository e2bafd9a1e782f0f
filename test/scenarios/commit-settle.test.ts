import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, describe } from 'node:test';
import type { CommandStartedEvent } from 'mongodb';
import { lastRecord, readHistoryFile } from '../helpers/assertions.js';
import { type Backend, journalOf, mongoBackend, testOn, wirePeerBackend } from '../helpers/backends.js';
import { tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';
import { acting, during, faultRunner, peerSuite, TEST_LIMITS, withClient } from '../helpers/faults.js';

/**
 * The unknown-commit fence and the last safe point before the commit: when a commit's answer is lost the tool
 * asks the server, boundedly and aloud, and says only what it learnt; a stop asked for before the commit is
 * sent aborts the transaction. Every test runs on the wire peer and, when one is given, on a real replica set
 * (fail points scoped to the run's appName); a lost majority is played by the peer alone.
 */
const ARGS = ['--sources', 'acme_west,acme_east', '--destination', 'acme_corporate'];
const JOURNAL = 'customer_migrations';
const COMMIT_REFUSED = { failCommands: ['commitTransaction'], errorCode: 50 };

/** The commands the tool sent, as its driver saw them (commandStarted), on any back end. */
function recorder() {
  const sent: CommandStartedEvent[] = [];
  return { sent, options: { onCommand: (event: CommandStartedEvent) => sent.push(event) } };
}

const backends: Backend[] = [await wirePeerBackend('settle'), await mongoBackend('settle')];

for (const backend of backends) {
  describe(`settling an unknown commit on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    const setUp = (() => {
      const runner = faultRunner(backend, dir.path, 'settle', ARGS);
      return () => runner(demoData());
    })();

    it("the fence's answer lost twice (a retryable write-concern error) and its document found: it is the fence, nothing committed, exit 1", async () => {
      const { loaded, history, failPoint, setFailPoint, cli, before } = await setUp();
      const { sent, options } = recorder();
      await failPoint({ times: 1 }, COMMIT_REFUSED, async () => {
        const result = await cli({
          openStore: during(
            // The driver retries the fence once; both answers carry the error, but the fence is written.
            () =>
              setFailPoint(
                { times: 2 },
                {
                  failCommands: ['insert'],
                  writeConcernError: { code: 91, codeName: 'ShutdownInProgress', errmsg: 'shutting down' },
                },
              ).then(() => {}),
            'after-transaction-fails',
            options,
          ),
        });
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /a majority did not confirm it .*; reading it on the primary \(majority/);
        assert.match(result.stderr, /the majority-committed document is the fence: nothing was committed/);
        assert.match(
          result.stderr,
          /Error: The commit was not confirmed .*; the server confirms nothing was committed \(journal [0-9a-f-]{36} fenced\)/,
        );
        assert.doesNotMatch(result.stderr, /UNKNOWN|COMPLETED|rolled back/);
        assert.equal(await loaded.state(), before);
        const record = lastRecord(history);
        assert.equal(record.status, 'failed');
        assert.deepEqual(
          (await journalOf(loaded.target)).map((doc) => [doc._id, doc.type]),
          [[record.id, 'fence']],
        );
      });
      // The fence is w: majority, bounded; the confirming read is majority, on the primary.
      const fence = sent.find(
        (e) =>
          e.commandName === 'insert' && e.command.insert === JOURNAL && e.command.autocommit === undefined,
      );
      assert.deepEqual(fence?.command.writeConcern, { w: 'majority', wtimeout: TEST_LIMITS.fenceWaitMs });
      assert.ok(fence?.command.maxTimeMS > (TEST_LIMITS.fenceWaitMs ?? 0), 'maxTimeMS above the wtimeout');
      const read = sent.findLast((e) => e.commandName === 'find' && e.command.find === JOURNAL);
      assert.equal(read?.command.readConcern?.level, 'majority');
      assert.ok(
        [undefined, 'primary'].includes(read?.command.$readPreference?.mode),
        'the confirming read goes to the primary',
      );
    });

    it("the fence's answer lost (no answer within its limit) and its retry meeting the fence it wrote: nothing committed, exit 1", async () => {
      const { loaded, history, failPoint, setFailPoint, cli } = await setUp();
      await failPoint({ times: 1 }, COMMIT_REFUSED, async () => {
        const result = await cli({
          openStore: during(
            () =>
              // Longer than the fence's client-side limit (its wtimeout plus the grace): its answer is given up.
              setFailPoint(
                { times: 1 },
                { failCommands: ['insert'], blockConnection: true, blockTimeMS: 800 },
              ).then(() => {}),
            'after-transaction-fails',
          ),
        });
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /the server confirms nothing was committed/);
        assert.doesNotMatch(result.stderr, /UNKNOWN|COMPLETED/);
        const record = lastRecord(history);
        assert.equal(record.status, 'failed');
        if (backend.name === 'wire peer') {
          // The peer lets the blocked fence land (a server may end it at its maxTimeMS instead): the retry meets it.
          assert.match(result.stderr, /attempt 1: no answer within 0\.7 s; asking again/);
          assert.match(result.stderr, /attempt 2: journal [0-9a-f-]{36} already exists .*; reading it/);
          assert.match(result.stderr, /the majority-committed document is the fence/);
        }
        assert.deepEqual(
          (await journalOf(loaded.target)).map((doc) => doc.type),
          ['fence'],
        );
      });
    });

    it('a duplicate key from another unique index of the journal is no proof of a commit: UNKNOWN, named, exit 5', async () => {
      const { loaded, history, admin, failPoint, cli } = await setUp();
      // One fence at most: a rule someone put on the journal collection; an earlier run's fence is there.
      await withClient(admin, async (client) => {
        const journal = client.db().collection(JOURNAL);
        await journal.createIndex(
          { type: 1 },
          { unique: true, name: 'one_fence', partialFilterExpression: { type: 'fence' } },
        );
        await journal.insertOne({ _id: 'an-earlier-run' as never, type: 'fence' });
      });
      await failPoint({ times: 1 }, COMMIT_REFUSED, async () => {
        const result = await cli();
        assert.equal(result.code, 5, result.stderr);
        assert.match(
          result.stderr,
          /is UNKNOWN: .*the fence was refused by the unique index \{"type":1\} of customer_migrations, which says nothing about the commit/,
        );
        assert.equal(lastRecord(history).status, 'unknown');
        assert.equal(
          (await journalOf(loaded.target)).filter((doc) => doc.type === 'migration').length,
          0,
          'and nothing was committed indeed',
        );
      });
    });

    it('settling says what each attempt does and its one bound; a server that cannot be asked is UNKNOWN within it', async () => {
      const { history, failPoint, setFailPoint, cli } = await setUp();
      await failPoint({ times: 1 }, COMMIT_REFUSED, async () => {
        let askedAt = 0;
        const result = await cli({
          openStore: during(async () => {
            await setFailPoint('alwaysOn', { failCommands: ['insert', 'find'], closeConnection: true });
            askedAt = Date.now();
          }, 'after-transaction-fails'),
        });
        const settling = Date.now() - askedAt;
        assert.equal(result.code, 5, result.stderr);
        assert.match(
          result.stderr,
          /settling: a fence \(journal [0-9a-f-]{36} written as type "fence", w: majority\), then a majority read on the primary; at most 2\.5 s in all/,
        );
        assert.match(result.stderr, /attempt 1: writing the fence \(waits at most 0\.4 s for a majority\)/);
        assert.match(result.stderr, /attempt 1: .*; asking again in 0\.3 s/);
        assert.match(result.stderr, /and the server could not tell \(no answer within 2\.5 s \(last: /);
        assert.ok(settling < (TEST_LIMITS.settleMs ?? 0) + 1_000, `settled (unknown) in ${settling} ms`);
        assert.equal(lastRecord(history).status, 'unknown');
      });
    });

    it('a signal while settling: the asking stops, the unknown record is written, exit 5', async () => {
      const { history, failPoint, setFailPoint, cli } = await setUp();
      const signals = new EventEmitter();
      await failPoint({ times: 1 }, COMMIT_REFUSED, async () => {
        const result = await cli({
          signals,
          openStore: during(async () => {
            await setFailPoint('alwaysOn', { failCommands: ['insert', 'find'], closeConnection: true });
            setTimeout(() => signals.emit('SIGTERM', 'SIGTERM'), 200);
          }, 'after-transaction-fails'),
        });
        assert.equal(result.code, 5, result.stderr);
        assert.match(result.stderr, /the server could not tell \(interrupted \(SIGTERM\) while asking\)/);
        const record = lastRecord(history);
        assert.equal(record.status, 'unknown');
        assert.match(record.check ?? '', /verify [0-9a-f-]{36}/);
      });
    });

    it('a stop asked for during the commit lets the server be asked; a forced stop then still writes the unknown record, exit 5', async () => {
      const { history, failPoint, setFailPoint, cli } = await setUp();
      const signals = new EventEmitter();
      const exits: { code: number; records: string[] }[] = [];
      // The commit is held, then refused: its outcome is unknown to the tool.
      await failPoint(
        { times: 1 },
        { failCommands: ['commitTransaction'], blockConnection: true, blockTimeMS: 600, errorCode: 50 },
        async () => {
          const result = await cli({
            signals,
            exit: (code) => exits.push({ code, records: readHistoryFile(history).map((r) => r.status) }),
            openStore: acting({
              'last-write': async () => {
                setTimeout(() => signals.emit('SIGINT', 'SIGINT'), 200);
              },
              'after-transaction-fails': async () => {
                await setFailPoint('alwaysOn', { failCommands: ['insert', 'find'], closeConnection: true });
                setTimeout(() => signals.emit('SIGINT', 'SIGINT'), 300);
              },
            }),
          });
          assert.match(
            result.stderr,
            /asking the server whether it committed/,
            'the first stop did not end the asking',
          );
          assert.match(result.stderr, /attempt 1: writing the fence/);
          assert.match(
            result.stderr,
            /Forced to stop: stopped while asking whether migration [0-9a-f-]{36} committed: its outcome is unknown\. To find out/,
          );
          assert.deepEqual(
            exits[0],
            { code: 5, records: ['unknown'] },
            'the record was written before the exit',
          );
        },
      );
    });

    it('a stop asked for right after the last write: the commit is not sent, the kill is awaited, nothing committed, exit 1', async () => {
      const { loaded, history, before, failPoint, cli } = await setUp();
      const { sent, options } = recorder();
      const signals = new EventEmitter();
      let signalledAt = 0;
      // The kill answers slowly: the run must wait for it before it ends.
      await failPoint(
        { times: 1 },
        { failCommands: ['killSessions'], blockConnection: true, blockTimeMS: 700 },
        async () => {
          const result = await cli({
            signals,
            openStore: during(
              async () => {
                signalledAt = Date.now();
                signals.emit('SIGTERM', 'SIGTERM');
              },
              'last-write',
              options,
            ),
          });
          const endedAfter = Date.now() - signalledAt;
          assert.equal(result.code, 1, result.stderr);
          assert.match(
            result.stderr,
            /Error: Interrupted \(SIGTERM\) before the commit: the transaction was aborted, nothing was committed/,
          );
          assert.equal(sent.filter((e) => e.commandName === 'commitTransaction').length, 0, 'no commit sent');
          assert.equal(sent.filter((e) => e.commandName === 'killSessions').length, 1);
          assert.ok(
            endedAfter >= 700,
            `the run ended ${endedAfter} ms after the signal, before the kill answered`,
          );
          assert.equal(await loaded.state(), before);
          assert.equal(lastRecord(history).status, 'failed');
        },
      );
    });
  });
}

/** A majority that cannot be reached: a one-member replica set cannot lose it, the peer plays it. */
peerSuite('a lost majority (wire peer)', ({ onPeer, test }) => {
  const limited = (
    peer: { setMajorityReachable(reachable: boolean): void },
    at: 'first-update' | 'after-transaction-fails',
  ) => during(async () => peer.setMajorityReachable(false), at);

  test('the fence waits for a majority at most its wtimeout, never for ever: UNKNOWN within the bound, recorded, exit 5', async () => {
    await onPeer({}, async ({ peer, uri, cli, history }) => {
      await withClient(uri, (client) =>
        client
          .db('admin')
          .command({ configureFailPoint: 'failCommand', mode: { times: 1 }, data: COMMIT_REFUSED }),
      );
      const started = Date.now();
      const result = await cli(ARGS, { openStore: limited(peer, 'after-transaction-fails') });
      peer.setMajorityReachable(true);
      assert.equal(result.code, 5, result.stderr);
      assert.ok(Date.now() - started < 15_000);
      assert.match(
        result.stderr,
        /the fence was written on the primary, but a majority did not confirm it \(waiting for replication timed out\)/,
      );
      assert.match(result.stderr, /is UNKNOWN: the commit was sent but not confirmed/);
      assert.doesNotMatch(
        result.stderr,
        /confirms nothing was committed/,
        'a fence on the primary alone proves nothing',
      );
      assert.equal(lastRecord(history).status, 'unknown');
    });
  });

  test('a commit on the primary that a majority has not confirmed is not called committed: UNKNOWN, exit 5', async () => {
    await onPeer({}, async ({ peer, cli, history }) => {
      const result = await cli(ARGS, { openStore: limited(peer, 'first-update') });
      const journalOnPrimary = await withClient(
        peer.uri('agmission', { directConnection: 'true' }),
        (client) => client.db('agmission').collection(JOURNAL).countDocuments({ type: 'migration' }),
      );
      peer.setMajorityReachable(true);
      assert.equal(journalOnPrimary, 1, 'the commit is on the primary');
      assert.equal(result.code, 5, result.stderr);
      assert.match(result.stderr, /waiting for replication timed out|operation exceeded time limit/);
      assert.match(result.stderr, /journal [0-9a-f-]{36} is not majority-committed yet/);
      assert.doesNotMatch(result.stderr, /confirms the migration committed/);
      assert.equal(lastRecord(history).status, 'unknown');
    });
  });
});
