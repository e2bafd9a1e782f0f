import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type Document, ObjectId } from 'mongodb';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTarget } from '../../src/store/types.js';
import { byId, lastRecord, readHistoryFile } from '../helpers/assertions.js';
import { allBackends, journalOf, testOn } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { applicationWriting } from '../helpers/concurrent.js';
import { demoData, IDS, oid } from '../helpers/data.js';

/**
 * The application keeps writing while a migration runs: what its snapshot did not see is found after the commit,
 * reported, recorded, and moved by a follow-up run; a run with nothing left to move writes nothing. On every back
 * end (see applicationWriting for what "concurrent" means on a snapshot file).
 */
const MERGE = ['--sources', 'acme_aviation', '--destination', 'consolidated_ag', '--merge-conflicts'];
const WEST = ['--sources', 'acme_west', '--destination', 'acme_corporate'];

for (const backend of await allBackends('live')) {
  describe(`an application writing during the migration, on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    let runs = 0;
    const setUp = async () => {
      runs += 1;
      const loaded = await backend.load(demoData());
      const history = join(dir.path, `history-${runs}.json`);
      const cli = (args: string[], openStoreWith?: (target: StoreTarget) => Promise<Store>) =>
        runCli(
          [...args, ...loaded.args, '--output-file', history],
          openStoreWith ? { openStore: openStoreWith } : {},
        );
      const journal = async () =>
        (await journalOf(loaded.target)).filter((entry) => entry.type === 'migration');
      return { loaded, history, cli, journal };
    };

    it('references to sources and to merged accounts written meanwhile, in both spellings, are recounted, recorded and moved by a follow-up; verify then passes', async () => {
      const { loaded, history, cli } = await setUp();
      const late = { objectId: new ObjectId(), hex: new ObjectId() };
      const first = await cli(
        MERGE,
        applicationWriting((app) =>
          app.insertMany('jobs', [
            { _id: late.objectId, byPuid: oid(IDS.acme_aviation), pilot: oid(IDS.pilot_mike_source) },
            { _id: late.hex, byPuid: IDS.acme_aviation, client: IDS.john_farmer },
          ]),
        ),
      );
      assert.equal(first.code, 0, first.stderr);
      assert.match(
        first.stderr,
        /WARNING: after the commit, documents still reference a source or a merged account \(jobs\.byPuid: 2, jobs\.client: 1, jobs\.pilot: 1\).*Run the same command again: a follow-up run moves only what was left behind/,
      );
      const migration = lastRecord(history);
      assert.deepEqual(migration.stragglers, { 'jobs.byPuid': 2, 'jobs.client': 1, 'jobs.pilot': 1 });

      const failing = await cli(['verify', migration.id]);
      assert.equal(failing.code, 6, failing.stdout);
      assert.match(
        failing.stdout,
        /FAIL {2}nothing left behind: still referencing a source or merged account: jobs\.byPuid: 2, jobs\.client: 1, jobs\.pilot: 1 \(a follow-up run moves them\)/,
      );

      const preview = await cli(['--preview', ...MERGE]);
      assert.equal(preview.code, 0, preview.stdout + preview.stderr);
      assert.match(preview.stdout, /\[follow-up: already migrated here\]/);
      assert.match(
        preview.stdout,
        new RegExp(`already migrated into consolidated_ag \\(migration ${migration.id} at `),
      );
      const followUp = await cli(MERGE);
      assert.equal(followUp.code, 0, followUp.stderr);
      assert.match(
        followUp.stdout,
        new RegExp(`Follow-up migration completed in \\d+ ms \\(a follow-up of ${migration.id}\\)`),
      );
      assert.doesNotMatch(followUp.stderr, /WARNING: after the commit/);
      const record = lastRecord(history);
      assert.deepEqual(record.followUpOf, [migration.id]);
      assert.deepEqual(record.stats.accountRefs, {
        'jobs.client': { matched: 1, modified: 1 },
        'jobs.pilot': { matched: 1, modified: 1 },
      });
      assert.equal(record.stats.mergedAccounts, 0, 'the follow-up merges nothing new');

      const jobs = (await loaded.dump()).jobs;
      const moved = byId(jobs, late.objectId.toHexString());
      assert.ok(oid(IDS.consolidated_ag).equals(moved.byPuid));
      assert.ok(oid(IDS.pilot_mike_destination).equals(moved.pilot), 'to the survivor of the merge');
      const hex = byId(jobs, late.hex.toHexString());
      assert.equal(hex.byPuid, IDS.consolidated_ag, 'a hex string stays a hex string');
      assert.equal(hex.client, IDS.John_Farmer);

      const verified = await cli(['verify', migration.id]);
      assert.equal(verified.code, 0, verified.stdout);
      assert.match(verified.stdout, new RegExp(`as of follow-up run ${record.id}`));
      assert.equal((await cli(['verify', record.id])).code, 0);
    });

    it('with --skip-invoices the invoices left with the sources are not stragglers; only what was written meanwhile is', async () => {
      const { history, cli } = await setUp();
      const result = await cli(
        [...MERGE, '--skip-invoices'],
        applicationWriting((app) =>
          app.insertMany('jobs', [{ _id: new ObjectId(), byPuid: oid(IDS.acme_aviation) }]),
        ),
      );
      assert.equal(result.code, 0, result.stderr);
      // Invoices still hold the source (customer) and the merged accounts (client): by design, not left behind.
      assert.deepEqual(lastRecord(history).stragglers, { 'jobs.byPuid': 1 });
      assert.match(result.stderr, /\(jobs\.byPuid: 1\)/);
    });

    it('an account created under the destination meanwhile with the username of one moving in: warned, recorded, verify fails naming both; a follow-up --merge-conflicts run resolves it', async () => {
      const { loaded, history, cli } = await setUp();
      const created = new ObjectId();
      const moving = '5f156b209e3c7a51d23a1c13'; // acme_west's west_pilot_ray (kind 5)
      const first = await cli(
        WEST,
        applicationWriting((app) =>
          app.insertMany('users', [
            {
              _id: created,
              username: 'West_Pilot_Ray',
              kind: '5',
              parent: oid(IDS.acme_corporate),
              active: true,
              markedDelete: false,
            },
          ]),
        ),
      );
      assert.equal(first.code, 0, first.stderr);
      assert.match(
        first.stderr,
        new RegExp(
          `WARNING: after the commit, 1 account\\(s\\) moved under acme_corporate share a username with a live account already there[^\\n]*\\n  "west_pilot_ray": west_pilot_ray ${moving} \\(kind 5, of acme_west\\), moved in, and West_Pilot_Ray ${created.toHexString()} \\(kind 5, of acme_corporate\\), already there\\n    rename one of them, or run the same command again with --merge-conflicts: that follow-up run merges ${moving} into ${created.toHexString()}`,
        ),
      );
      const migration = lastRecord(history);
      assert.equal(migration.status, 'completed');
      assert.deepEqual(
        migration.usernameClashes?.map((c) => [c.moved.id, c.moved.from, c.existing.id]),
        [[moving, 'acme_west', created.toHexString()]],
      );

      const failing = await cli(['verify', migration.id]);
      assert.equal(failing.code, 6, failing.stdout);
      assert.match(
        failing.stdout,
        new RegExp(
          `FAIL {2}usernames under the destination: 1 clash: "west_pilot_ray": west_pilot_ray ${moving} .* and West_Pilot_Ray ${created.toHexString()}`,
        ),
      );

      const blocked = await cli(WEST);
      assert.equal(blocked.code, 3, 'without --merge-conflicts the follow-up stops at the conflict');
      assert.match(blocked.stderr, /Migration aborted due to conflicts \(1\)/);
      const resolved = await cli([...WEST, '--merge-conflicts']);
      assert.equal(resolved.code, 0, resolved.stderr);
      assert.equal(lastRecord(history).stats.mergedAccounts, 1);
      const users = (await loaded.dump()).users;
      assert.equal(byId(users, moving).markedDelete, true);
      assert.ok(created.equals(byId(users, moving).mergedInto));
      const jobs = (await loaded.dump()).jobs ?? [];
      assert.ok(
        jobs.some((job: Document) => created.equals(job.pilot)),
        'its jobs follow the survivor',
      );
      const verified = await cli(['verify', migration.id]);
      assert.equal(verified.code, 0, verified.stdout);
      assert.match(verified.stdout, /PASS {2}usernames under the destination/);
    });

    it('the same command again with nothing left: "nothing to do", exit 0, no journal entry, no mark, a noop record; the first stays reversible', async () => {
      const { loaded, history, cli, journal } = await setUp();
      assert.equal((await cli(WEST)).code, 0);
      const migration = lastRecord(history);
      const state = await loaded.state();

      const preview = await cli(['--preview', ...WEST]);
      assert.equal(preview.code, 0);
      assert.match(
        preview.stdout,
        new RegExp(
          `Nothing to do: migration ${migration.id} already moved these sources at ${migration.startedAt}`,
        ),
      );
      assert.match(preview.stdout, /Execution would change nothing/);
      assert.doesNotMatch(
        preview.stdout,
        /this follow-up run/,
        'it is not a follow-up: nothing was left behind',
      );
      assert.doesNotMatch(preview.stdout, /Actions on execute/);

      const again = await cli(WEST);
      assert.equal(again.code, 0, again.stderr);
      assert.match(
        again.stdout,
        new RegExp(
          `Nothing to do: migration ${migration.id} already moved these sources at ${migration.startedAt}; nothing was left behind, nothing was written`,
        ),
      );
      assert.doesNotMatch(again.stdout, /Migration completed/);
      assert.equal(await loaded.state(), state, 'no document changed: no migrationsReceived mark');
      assert.deepEqual(
        (await journal()).map((entry) => entry._id),
        [migration.id],
        'no journal entry',
      );
      const noop = lastRecord(history);
      assert.equal(noop.status, 'noop');
      assert.deepEqual(noop.nothingToDo, {
        movedBy: [{ id: migration.id, startedAt: migration.startedAt }],
        committedMeanwhile: false,
      });
      assert.equal(readHistoryFile(history).filter((r) => r.status === 'completed').length, 1);

      const json = JSON.parse((await cli([...WEST, '--json'])).stdout);
      assert.equal(json.status, 'noop');

      assert.equal((await cli(['verify'])).code, 0, 'verify still checks the real migration');
      const rollback = await cli(['rollback', migration.id]);
      assert.equal(rollback.code, 0, rollback.stdout + rollback.stderr);
    });

    test('another run commits while this one waits: "nothing to do", naming that run, nothing written', {
      skip:
        backend.name === 'snapshot'
          ? 'a run holds the snapshot file from its first read to its rename: no other run can commit meanwhile'
          : backend.name === 'dump'
            ? 'a run holds the dump folder (its lock) from its first read to its last rename: no other run can commit meanwhile'
            : backend.skip,
    }, async () => {
      const { loaded, history, cli, journal } = await setUp();
      const other = join(dir.path, `other-${runs}.json`);
      let otherId = '';
      const late = async (target: StoreTarget): Promise<Store> => {
        const store = await openStore(target);
        const wrapped: Store = Object.create(store);
        // This run has planned and shown its plan; the other operator's run commits before its transaction.
        wrapped.transaction = async (work, options) => {
          const result = await runCli([...WEST, ...loaded.args, '--output-file', other]);
          assert.equal(result.code, 0, result.stderr);
          otherId = lastRecord(other).id;
          return store.transaction(work, options);
        };
        return wrapped;
      };
      const result = await cli(WEST, late);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Actions on execute/, 'it had a plan with work');
      assert.match(
        result.stdout,
        new RegExp(
          `Nothing to do: migration ${otherId} \\(at [^)]+\\) committed while this run waited and already moved these sources`,
        ),
      );
      const record = lastRecord(history);
      assert.equal(record.status, 'noop');
      assert.equal(record.nothingToDo?.committedMeanwhile, true);
      assert.deepEqual(
        (await journal()).map((entry) => entry._id),
        [otherId],
      );
      const destination = byId((await loaded.dump()).users, IDS.acme_corporate);
      assert.deepEqual(
        destination.migrationsReceived,
        [otherId],
        'marked once, by the run that moved the data',
      );
    });
  });
}
