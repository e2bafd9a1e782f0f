import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type Document, ObjectId } from 'mongodb';
import { mib } from '../../src/plan/transaction-size.js';
import { lastRecord } from '../helpers/assertions.js';
import { type Backend, mongoBackend, testOn, wirePeerBackend } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';
import { failCommand, faultRunner, peerSuite, withClient } from '../helpers/faults.js';
import { startWirePeer } from '../wire-peer/index.js';

/**
 * What the server's limits mean for a migration, said before anything runs: the size and time of the
 * transaction against the server's own cache, eviction triggers and lifetime; phases when it would not fit; the
 * history window of the preview's snapshot; servers too old, users who may not read the shard keys, and a
 * journal collection sharded so that its fence would prove nothing.
 */
const ARGS = ['--sources', 'acme_west,acme_east', '--destination', 'acme_corporate'];

const backends: Backend[] = [await wirePeerBackend('limits'), await mongoBackend('limits')];

for (const backend of backends) {
  describe(`the server's limits on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    const runner = faultRunner(backend, dir.path, 'limits', ARGS);

    it("the preview states the transaction's size and time against the server's own cache, lifetime and history window, and the commit's bounds", async () => {
      const { cli, admin } = await runner(demoData());
      const server = await withClient(admin, async (client) => {
        const status = await client.db('admin').command({ serverStatus: 1 });
        const parameters = await client.db('admin').command({ getParameter: '*' });
        return { cache: status.wiredTiger.cache, parameters };
      });
      // The preview's read-only store has the default bounds, as an operator's run has them.
      const preview = await cli({}, ['--preview']);
      assert.equal(preview.code, 0, preview.stderr);
      const out = preview.stdout;
      assert.match(
        out,
        /Transaction size and time \(an estimate: what it read, and what it assumed, are below\):/,
      );
      assert.match(
        out,
        /\n {2}\d+ document\(s\) changed, ~[\d.]+ [KM]iB dirtied in cache \(documents [\d.]+ [KM]iB, index entries [\d.]+ [KM]iB, journal [\d.]+ [KM]iB\)/,
      );
      assert.ok(
        out.includes(`of the ${mib(server.cache['maximum bytes configured'])} cache, from `),
        `the cache size the server reports (${server.cache['maximum bytes configured']}) in:\n${out}`,
      );
      assert.match(
        out,
        new RegExp(
          `\\n {2}time: ~[\\d.]+ s of ${server.parameters.transactionLifetimeLimitSeconds}(\\.0)? s \\(\\d+ %\\): the server's transactionLifetimeLimitSeconds`,
        ),
      );
      assert.match(out, /\n {2}binds first: the (cache|time) \(\d+ % of its limit\)/);
      assert.match(
        out,
        /\n {2}commit: capped at 120 s \(maxCommitTimeMS\), waiting at most 90 s for a majority to confirm it \(w: majority, wtimeout\); a lost answer is settled within 120 s more/,
      );
      assert.ok(
        out.includes(
          `reads: one snapshot, which the server keeps readable for ${server.parameters.minSnapshotHistoryWindowInSeconds} s (minSnapshotHistoryWindowInSeconds)`,
        ),
        out,
      );
      assert.doesNotMatch(out, /no average size/, 'the sizes came from $collStats');
    });

    it('a preview whose reads outlive the snapshot history window gets a plain message and what to do, exit 1', async () => {
      const { cli, admin, failPoint } = await runner(demoData());
      // MongoDB 5.0+: the window is a server parameter, shortened for this run only. On a real server other test
      // files may be previewing meanwhile: its window stays longer than any of their previews takes.
      const window = backend.name === 'wire peer' ? 1 : 5;
      const was = await withClient(
        admin,
        async (client) =>
          (await client.db('admin').command({ setParameter: 1, minSnapshotHistoryWindowInSeconds: window }))
            .was,
      );
      let writing = true;
      // A server moves its oldest readable time on with its writes.
      const writer = withClient(admin, async (client) => {
        while (writing) {
          await client.db().collection('clock').insertOne({ at: new Date() });
          await delay(200);
        }
      });
      try {
        await failPoint(
          { times: 1 },
          { failCommands: ['aggregate'], blockConnection: true, blockTimeMS: (window + 2) * 1_000 },
          async () => {
            const preview = await cli({}, ['--preview']);
            assert.equal(preview.code, 1, preview.stderr);
            assert.match(
              preview.stderr,
              /Error: The reads took longer than MongoDB .* keeps snapshot history \(minSnapshotHistoryWindowInSeconds, 300 s by default\), and MongoDB discarded the snapshot they read \(SnapshotTooOld\); nothing was written\. Run it again at a quieter moment, or raise the window for the run: db\.adminCommand\(\{ setParameter: 1, minSnapshotHistoryWindowInSeconds: 900 \}\)/,
            );
            assert.doesNotMatch(preview.stderr, /Unexpected error/);
          },
        );
      } finally {
        writing = false;
        await writer;
        await withClient(admin, (client) =>
          client.db('admin').command({ setParameter: 1, minSnapshotHistoryWindowInSeconds: was }),
        );
      }
    });
  });
}

/** What only the wire peer can play: a small cache, old servers, a mongos and its catalogue. */
peerSuite('server limits only the wire peer can play', ({ onPeer, test, dir }) => {
  test('the eviction triggers come from the runtime configuration, and what the workload holds comes off them', async () => {
    await onPeer({ cacheSizeBytes: 100 * 2 ** 20 }, async ({ peer, uri, cli }) => {
      peer.setCacheUsage({ dirtyBytes: 6 * 2 ** 20, updatesBytes: 4 * 2 ** 20 });
      await withClient(uri, (client) =>
        client
          .db('admin')
          .command({ setParameter: 1, wiredTigerEngineRuntimeConfig: 'eviction_dirty_trigger=10' }),
      );
      const preview = await cli(['--preview', ...ARGS]);
      assert.equal(preview.code, 0, preview.stderr);
      assert.match(
        preview.stdout,
        /\n {2}cache: [\d.]+ [KM]iB of 1\.0 MiB \(\d+ %\): eviction_updates_trigger, 5\.0 MiB \(5 % of the 100 MiB cache, from wiredTigerEngineRuntimeConfig "eviction_dirty_trigger=10"\) less 4\.0 MiB of updates the workload already holds/,
      );
      await failCommand(uri, 'alwaysOn', { failCommands: ['serverStatus'], errorCode: 13 });
      const refused = await cli(['--preview', ...ARGS]);
      assert.match(
        refused.stdout,
        /WARNING: Could not read the WiredTiger cache \(serverStatus: .*\); the checks that need it were skipped/,
      );
      assert.match(refused.stdout, /assumed: .*no cache figures: the cache limit could not be checked/);
      assert.doesNotMatch(refused.stdout, /\n {2}cache: /);
    });
  });

  test('over the cache limit: the preview proposes phases as commands (also in --json), and running them migrates everything', async () => {
    const sources = ['acme_west', 'acme_east', 'acme_south'];
    await onPeer({ cacheSizeBytes: 16 * 2 ** 20 }, async ({ uri, cli, history }) => {
      // Each source gets 300 large jobs: together over the cache's room, each well within it.
      await withClient(uri, async (client) => {
        const jobs = client.db('agmission').collection<Document>('jobs');
        for (const source of sources) {
          const byPuid = new ObjectId(IDS[source as keyof typeof IDS]);
          await jobs.insertMany(
            Array.from({ length: 300 }, () => ({ _id: new ObjectId(), byPuid, notes: 'x'.repeat(2_000) })),
          );
        }
      });
      const migrate = ['--sources', sources.join(','), '--destination', 'acme_corporate'];
      const preview = await cli(['--preview', ...migrate]);
      assert.equal(preview.code, 0, preview.stderr);
      assert.match(
        preview.stdout,
        /WARNING: The transaction would exceed the cache limit \(1\d\d % of it\) and be aborted: migrate in 2 phases \(below\), each within 80 % of every limit/,
      );
      const commands = preview.stdout.split('\n').filter((line) => line.trim().startsWith('node scripts/'));
      assert.equal(commands.length, 2, preview.stdout);
      const json = JSON.parse((await cli(['--preview', '--json', ...migrate])).stdout);
      const phases = json.plan.size.phases as {
        sources: { username: string }[];
        shares: { cache: number };
        command: string;
      }[];
      assert.deepEqual(
        phases.flatMap((phase) => phase.sources.map((s) => s.username)),
        sources,
        'every source once, in the order given',
      );
      assert.ok(phases.every((phase) => phase.shares.cache <= 0.8));
      assert.deepEqual(
        phases.map((phase) => phase.command),
        commands.map((line) => line.trim()),
      );
      // Each phase as printed: same target and history file.
      for (const command of commands) {
        const args = shellWords(command.trim()).slice(2);
        assert.ok(args.includes('--output-file') && args.includes(history), command);
        const run = await runCli(args);
        assert.equal(run.code, 0, run.stderr);
      }
      const state = await withClient(uri, (client) =>
        client
          .db('agmission')
          .collection('users')
          .find({ _id: { $in: sources.map((s) => new ObjectId(IDS[s as keyof typeof IDS])) } })
          .toArray(),
      );
      assert.ok(state.every((customer) => customer.markedDelete === true && customer.active === false));
      assert.equal(lastRecord(history).status, 'completed');
    });
  });

  test('a verify whose reads outlive the snapshot history window gets the same plain message, exit 1', async () => {
    await onPeer({ minSnapshotHistoryWindowInSeconds: 1 }, async ({ peer, cli }) => {
      const migration = await cli(ARGS);
      assert.equal(migration.code, 0, migration.stderr);
      peer.failCommand({
        mode: { times: 1 },
        data: { failCommands: ['aggregate'], blockConnection: true, blockTimeMS: 1_500 },
      });
      const verify = await cli(['verify']);
      assert.equal(verify.code, 1, verify.stderr);
      assert.match(
        verify.stderr,
        /Error: The reads took longer than .* keeps snapshot history .*\(SnapshotTooOld\)/,
      );
    });
  });

  test('a server older than 4.2 is refused plainly, at once: exit 2, nothing recorded', async () => {
    const peer = await startWirePeer({ maxWireVersion: 7, helloCommand: false });
    const history = join(dir, 'old-server.json');
    try {
      for (const args of [['--preview', ...ARGS], ARGS]) {
        const started = Date.now();
        const result = await runCli([...args, '--uri', peer.uri('agmission'), '--output-file', history]);
        assert.equal(result.code, 2, result.stderr);
        assert.match(
          result.stderr,
          /^Error: MongoDB 4\.0 is too old: this tool needs 4\.2 or later \(127\.0\.0\.1:\d+ reports wire version 7\)/m,
        );
        assert.doesNotMatch(result.stderr, /Cannot reach/);
        assert.ok(Date.now() - started < 4_000, 'without waiting for the server-selection timeout');
      }
      assert.equal(existsSync(history), false);
    } finally {
      await peer.close();
    }
  });

  test('mongos: a user who may not read config.collections gets a warning that the shard-key checks were skipped', async () => {
    await onPeer({ role: 'mongos' }, async ({ peer, cli }) => {
      peer.failCommand({
        mode: 'alwaysOn',
        data: { failCommands: ['find'], errorCode: 13, namespace: 'config.collections' },
      });
      const preview = await cli(['--preview', ...ARGS]);
      assert.equal(preview.code, 0, preview.stderr);
      assert.match(
        preview.stdout,
        /WARNING: Could not read the shard keys \(config\.collections: .*\), so the shard-key checks \(reference fields, the journal collection\) were skipped/,
      );
      assert.doesNotMatch(preview.stdout + preview.stderr, /Unexpected error/);
    });
  });

  test('mongos: a journal collection sharded on anything but _id is refused before anything is written, exit 3', async () => {
    await onPeer({ role: 'mongos' }, async ({ peer, uri, cli }) => {
      await withClient(uri, (client) =>
        client
          .db('config')
          .collection('collections')
          .insertOne({ _id: 'agmission.customer_migrations' as never, key: { migration: 1 } }),
      );
      peer.clearLog();
      const preview = await cli(['--preview', ...ARGS]);
      assert.equal(preview.code, 3, preview.stderr);
      assert.match(
        preview.stdout,
        /the journal collection customer_migrations is sharded on \{"migration":1\}: _id is then unique only per shard/,
      );
      const execute = await cli(ARGS);
      assert.equal(execute.code, 3, execute.stderr);
      assert.equal(
        peer.log.filter((e) => ['update', 'insert', 'commitTransaction'].includes(e.name)).length,
        0,
      );
    });
  });
});

/** Splits a printed command as a POSIX shell would (plain words and single-quoted ones). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((match) =>
    match[1] !== undefined ? match[1].replace(/'\\''/g, "'") : (match[2] as string),
  );
}
