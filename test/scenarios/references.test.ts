import assert from 'node:assert/strict';
import { after, describe } from 'node:test';
import { type Document, ObjectId } from 'mongodb';
import { byId, lastRecord } from '../helpers/assertions.js';
import { allBackends, scenarioRunner, testOn } from '../helpers/backends.js';
import { tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';

/** References the tool cannot move as plain ObjectIds: hex strings (moved, kept strings) and arrays (refused). */
for (const backend of await allBackends('references')) {
  describe(`references stored otherwise, on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    const run = scenarioRunner(backend, dir.path);
    const migrate = ['--sources', 'acme_west', '--destination', 'acme_corporate'];

    it('references stored as hex strings move too, stay strings, and are counted on their own line', async () => {
      const data = demoData();
      const stringJob = { _id: new ObjectId(), byPuid: IDS.acme_west, name: 'legacy job' };
      const stringAccount = {
        _id: new ObjectId(),
        username: 'legacy_pilot',
        kind: '5',
        parent: IDS.acme_west,
      };
      data.get('jobs')?.push(stringJob);
      data.get('users')?.push(stringAccount);
      const preview = await run(data, ['--preview', ...migrate]);
      assert.equal(preview.result.code, 0, preview.result.stderr);
      assert.match(
        preview.result.stdout,
        /jobs\s+byPuid\s+4\n\s+1\s+stored as hex strings: moved as strings\n/,
      );
      assert.match(preview.result.stdout, /legacy_pilot \(a sub-account \(kind '5'\), from acme_west\)/);

      const r = await run(data, migrate);
      assert.equal(r.result.code, 0, r.result.stderr);
      const job = byId(r.after.jobs, String(stringJob._id));
      assert.equal(job.byPuid, IDS.acme_corporate, 'moved, and still a string');
      assert.equal(byId(r.after.users, String(stringAccount._id)).parent, IDS.acme_corporate);
      const record = lastRecord(r.history);
      assert.deepEqual(record.stats.stringRefs, { 'users.parent': 1, 'jobs.byPuid': 1 });
      assert.equal(
        r.after.jobs?.filter((j) => j.byPuid === IDS.acme_west).length,
        0,
        'no string left on the source',
      );
    });

    it('a string-parented account takes part in the conflict scan like the others', async () => {
      const data = demoData();
      data
        .get('users')
        ?.push({ _id: new ObjectId(), username: 'CORP_ADMIN', kind: '2', parent: IDS.acme_west });
      const r = await run(data, ['--preview', ...migrate]);
      assert.equal(r.result.code, 3, r.result.stdout);
      assert.match(r.result.stdout, /"CORP_ADMIN": incoming CORP_ADMIN .* vs existing corp_admin/);
    });

    it('a reference inside an array is never overwritten: listed by the preview, refused by execute (exit 3)', async () => {
      const data = demoData();
      const shared: Document = {
        _id: new ObjectId(),
        byPuid: [new ObjectId(IDS.acme_west), new ObjectId(IDS.valley_sprayers)],
        name: 'shared job',
      };
      data.get('jobs')?.push(shared);
      const preview = await run(data, ['--preview', ...migrate]);
      assert.equal(preview.result.code, 3);
      assert.match(
        preview.result.stdout,
        new RegExp(`\\s+1\\s+inside arrays: cannot be moved \\(e\\.g\\. ${shared._id}\\)`),
      );
      assert.match(
        preview.result.stdout,
        /Execution would be BLOCKED:\n {2}- jobs\.byPuid: 1 document\(s\) hold a moved id inside an array/,
      );
      assert.doesNotMatch(preview.result.stdout, /Actions on execute|--expect-plan/);
      assert.equal(preview.afterState, preview.beforeState);

      const r = await run(data, migrate);
      assert.equal(r.result.code, 3, r.result.stderr);
      assert.match(
        r.result.stderr,
        /Migration aborted; nothing was changed: jobs\.byPuid: 1 document\(s\) hold a moved id inside an array/,
      );
      assert.equal(r.afterState, r.beforeState, 'nothing written, the array least of all');
      assert.equal(lastRecord(r.history).status, 'failed');
    });
  });
}
