import assert from 'node:assert/strict';
import { after, describe } from 'node:test';
import { BSON, type Document } from 'mongodb';
import { byId, countWhere, lastRecord } from '../helpers/assertions.js';
import { allBackends, scenarioRunner, testOn } from '../helpers/backends.js';
import { tempDir } from '../helpers/cli.js';
import { buildData, demoData, IDS } from '../helpers/data.js';

for (const backend of await allBackends('merge')) {
  describe(`--merge-conflicts and --convert-to-admin on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    const run = scenarioRunner(backend, dir.path);

    it('3. merge: the destination account survives, references follow it, the before-image is kept', async () => {
      const r = await run(demoData(), [
        '--sources',
        'acme_aviation',
        '--destination',
        'consolidated_ag',
        '--merge-conflicts',
      ]);
      assert.equal(r.result.code, 0, r.result.stderr);
      const merges = [
        [IDS.john_farmer, IDS.John_Farmer],
        [IDS.pilot_mike_source, IDS.pilot_mike_destination],
      ] as const;
      for (const [loser, survivor] of merges) {
        const merged = byId(r.after.users, loser);
        assert.equal(merged.markedDelete, true);
        assert.equal(merged.active, false);
        assert.equal(String(merged.mergedInto), survivor);
        assert.ok(merged.mergedAt instanceof Date);
        assert.equal(
          String(merged.parent),
          IDS.consolidated_ag,
          'the merged account is re-parented like the rest',
        );
        const survivorAfter = byId(r.after.users, survivor);
        assert.deepEqual(survivorAfter, byId(r.before.users, survivor), 'the survivor itself is untouched');
        for (const [collection, field] of [
          ['jobs', 'client'],
          ['jobs', 'pilot'],
          ['invoices', 'client'],
        ] as const) {
          assert.equal(
            countWhere(r.after[collection], field, loser),
            0,
            `${collection}.${field} still points at ${loser}`,
          );
          assert.equal(
            countWhere(r.after[collection], field, survivor),
            countWhere(r.before[collection], field, survivor) +
              countWhere(r.before[collection], field, loser),
          );
        }
      }
      const record = lastRecord(r.history);
      assert.equal(record.status, 'completed');
      assert.equal(record.options?.mergeConflicts, true);
      assert.equal(record.mergedAccounts.length, 2);
      for (const [loser, survivor] of merges) {
        const kept = record.mergedAccounts.find((m) => m.survivor === survivor);
        assert.ok(kept);
        const before = BSON.EJSON.deserialize(kept.before as Document, { relaxed: false });
        assert.equal(
          BSON.EJSON.stringify(before, { relaxed: false }),
          BSON.EJSON.stringify(byId(r.before.users, loser), { relaxed: false }),
        );
      }
      assert.deepEqual(record.stats.accountRefs['jobs.client'], { matched: 6, modified: 6 });
      assert.deepEqual(record.stats.accountRefs['jobs.pilot'], { matched: 4, modified: 4 });
      assert.deepEqual(record.stats.accountRefs['invoices.client'], { matched: 3, modified: 3 });
      assert.equal(record.stats.mergedAccounts, 2);
      assert.equal(record.conflicts.length, 2);
    });

    it('3. preview shows what --merge-conflicts would do and exits 0 with it', async () => {
      const r = await run(demoData(), [
        '--preview',
        '--sources',
        'acme_aviation',
        '--destination',
        'consolidated_ag',
        '--merge-conflicts',
      ]);
      assert.equal(r.result.code, 0, r.result.stderr);
      assert.match(
        r.result.stdout,
        /will be resolved: merge: 507f1f77bcf86cd799439015 is marked deleted and its references move to 5593f2609e3c7a51d23a1c09/,
      );
      assert.match(
        r.result.stdout,
        /jobs\.client: re-point merged accounts to their survivors: 6 document\(s\)/,
      );
      assert.match(
        r.result.stdout,
        /Account references moved from merged accounts to their survivors:\n {2}jobs\.client\s+6\n {2}jobs\.pilot\s+4\n {2}invoices\.client\s+3\n/,
      );
      assert.match(r.result.stdout, /Execution would proceed/);
      assert.equal(r.afterState, r.beforeState);
    });

    it('between two sources the account of the source listed first survives', async () => {
      const { data, ids } = buildData({
        hq: [],
        north: [{ username: 'Sam', kind: '3' }],
        south: [{ username: ' sam ', kind: '3' }],
      });
      for (const [order, survivor, loser] of [
        ['north,south', 'north/Sam', 'south/ sam '],
        ['south,north', 'south/ sam ', 'north/Sam'],
      ] as const) {
        const r = await run(data, ['--sources', order, '--destination', 'hq', '--merge-conflicts']);
        assert.equal(r.result.code, 0, r.result.stderr);
        const merged = byId(r.after.users, String(ids[loser]));
        assert.equal(String(merged.mergedInto), String(ids[survivor]));
        assert.equal(byId(r.after.users, String(ids[survivor])).markedDelete, false);
        assert.equal(countWhere(r.after.jobs, 'client', String(ids[loser])), 0);
        assert.equal(countWhere(r.after.jobs, 'client', String(ids[survivor])), 2);
      }
    });

    it('a conflict between different kinds blocks even with --merge-conflicts', async () => {
      const { data } = buildData({
        hq: [{ username: 'lee', kind: '3' }],
        west: [
          { username: 'LEE', kind: '5' },
          { username: 'ok', kind: '3' },
        ],
      });
      const r = await run(data, ['--sources', 'west', '--destination', 'hq', '--merge-conflicts']);
      assert.equal(r.result.code, 3);
      assert.match(
        r.result.stdout,
        /BLOCKS: different kinds \('5' vs '3'\) cannot be merged; rename one of the two accounts first/,
      );
      assert.equal(
        r.result.stdout.match(/BLOCKS: different kinds/g)?.length,
        1,
        'the conflict list is printed once',
      );
      assert.match(
        r.result.stderr,
        /^Error: Migration aborted due to conflicts \(1\); nothing was changed: 1 username conflict\(s\) cannot be merged; rename those accounts first$/m,
      );
      assert.doesNotMatch(r.result.stderr, /re-run with --merge-conflicts/, 'the flag is already given');
      assert.equal(r.afterState, r.beforeState);
      const record = lastRecord(r.history);
      assert.equal(record.status, 'failed');
      assert.equal(record.conflicts.length, 1);
    });

    it('with --skip-invoices a merge leaves invoices exactly as they were', async () => {
      const r = await run(demoData(), [
        '--sources',
        'acme_aviation',
        '--destination',
        'consolidated_ag',
        '--merge-conflicts',
        '--skip-invoices',
      ]);
      assert.equal(r.result.code, 0, r.result.stderr);
      assert.deepEqual(r.after.invoices, r.before.invoices);
      assert.equal(countWhere(r.after.jobs, 'client', IDS.john_farmer), 0);
    });

    it('4. convert-to-admin keeps each source customer as an active admin under the destination', async () => {
      const r = await run(demoData(), [
        '--sources',
        'acme_west,acme_east',
        '--destination',
        'acme_corporate',
        '--convert-to-admin',
      ]);
      assert.equal(r.result.code, 0, r.result.stderr);
      for (const source of [IDS.acme_west, IDS.acme_east]) {
        const admin = byId(r.after.users, source);
        const original = byId(r.before.users, source);
        assert.equal(admin.kind, '2');
        assert.equal(String(admin.parent), IDS.acme_corporate);
        assert.equal(admin.active, true);
        assert.notEqual(admin.markedDelete, true);
        assert.equal(admin.username, original.username);
        assert.equal(admin.convertedFrom, '1');
        assert.equal(String(admin.migratedTo), IDS.acme_corporate);
        assert.equal(countWhere(r.after.users, 'parent', source), 0);
        assert.equal(countWhere(r.after.jobs, 'byPuid', source), 0);
        assert.equal(countWhere(r.after.invoices, 'customer', source), 0);
      }
      const record = lastRecord(r.history);
      assert.equal(record.options?.convertToAdmin, true);
      assert.deepEqual(
        record.convertedCustomers.map((c) => String((c.before as Document)._id.$oid)).sort(),
        [IDS.acme_west, IDS.acme_east].sort(),
      );
      assert.equal((record.convertedCustomers[0]?.before as Document | undefined)?.kind, '1');
    });

    it("4. a converted customer's own username blocks even with --merge-conflicts", async () => {
      const { data } = buildData({
        corp: [{ username: 'Acme_West', kind: '2' }],
        acme_west: [{ username: 'pilot', kind: '5' }],
      });
      const r = await run(data, [
        '--sources',
        'acme_west',
        '--destination',
        'corp',
        '--convert-to-admin',
        '--merge-conflicts',
      ]);
      assert.equal(r.result.code, 3);
      assert.match(
        r.result.stdout,
        /acme_west is a source customer being converted to an admin and is never merged away/,
      );
      assert.equal(r.afterState, r.beforeState);
      const preview = await run(data, [
        '--preview',
        '--sources',
        'acme_west',
        '--destination',
        'corp',
        '--convert-to-admin',
      ]);
      assert.equal(preview.result.code, 3);
      assert.match(preview.result.stdout, /source customer converted to admin/);
    });

    it("4. a converted customer's username also clashes with its own sub-account", async () => {
      const { data } = buildData({ corp: [], east: [{ username: 'EAST', kind: '3' }] });
      const r = await run(data, [
        '--preview',
        '--sources',
        'east',
        '--destination',
        'corp',
        '--convert-to-admin',
      ]);
      assert.equal(r.result.code, 3);
      assert.match(
        r.result.stdout,
        /"EAST": incoming EAST .* vs existing east .*source customer converted to admin/,
      );
      const plain = await run(data, ['--preview', '--sources', 'east', '--destination', 'corp']);
      assert.equal(plain.result.code, 0, 'without conversion the customer username does not move');
    });

    it('convert-to-admin combines with --merge-conflicts and --skip-invoices', async () => {
      const r = await run(demoData(), [
        '--sources',
        'acme_aviation',
        '--destination',
        'consolidated_ag',
        '--convert-to-admin',
        '--merge-conflicts',
        '--skip-invoices',
      ]);
      assert.equal(r.result.code, 0, r.result.stderr);
      assert.equal(byId(r.after.users, IDS.acme_aviation).kind, '2');
      assert.equal(byId(r.after.users, IDS.john_farmer).markedDelete, true);
      assert.deepEqual(r.after.invoices, r.before.invoices);
    });
  });
}
