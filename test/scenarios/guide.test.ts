import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { type Document, ObjectId } from 'mongodb';
import { DEFAULT_HISTORY_FILE } from '../../src/cli/options.js';
import { assertNoFile, byId, countWhere, lastRecord, readHistoryFile } from '../helpers/assertions.js';
import { allBackends, scenarioRunner, testOn } from '../helpers/backends.js';
import { type CliResult, runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';

const SUB_KINDS = new Set(['3', '5', '9']);

for (const backend of await allBackends('guide')) {
  describe(`guide scenarios on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    const committedHistory = readFileSync(DEFAULT_HISTORY_FILE);
    after(async () => {
      await backend.close();
      dir.remove();
      assert.deepEqual(
        readFileSync(DEFAULT_HISTORY_FILE),
        committedHistory,
        'the committed history is never touched',
      );
    });

    const runOnDemoData = scenarioRunner(backend, dir.path);
    /** Runs the guide's command against a fresh copy of the demo data. */
    const run = (args: string[]) => runOnDemoData(demoData(), args);

    function assertMigrated(
      before: Record<string, Document[]>,
      after: Record<string, Document[]>,
      sources: string[],
      destination: string,
      invoices = true,
    ) {
      const total = (docs: Record<string, Document[]>, collection: string, field: string, ids: string[]) =>
        ids.reduce((sum, id) => sum + countWhere(docs[collection], field, id), 0);
      // The guide's verification queries.
      assert.equal(
        countWhere(after.jobs, 'byPuid', destination),
        total(before, 'jobs', 'byPuid', [...sources, destination]),
      );
      const subAccounts = (docs: Record<string, Document[]>, ids: string[]) =>
        (docs.users ?? []).filter((u) => ids.includes(String(u.parent)) && SUB_KINDS.has(u.kind)).length;
      assert.equal(subAccounts(after, [destination]), subAccounts(before, [...sources, destination]));
      for (const source of sources) {
        const customer = byId(after.users, source);
        assert.equal(customer.kind, '1');
        assert.equal(customer.markedDelete, true);
        assert.equal(customer.active, false);
        assert.equal(String(customer.migratedTo), destination);
        assert.ok(customer.migratedAt instanceof Date);
        assert.equal(countWhere(after.jobs, 'byPuid', source), 0, 'no job left on a source');
        assert.equal(countWhere(after.users, 'parent', source), 0, 'no account left under a source');
        assert.equal(
          countWhere(after.invoices, 'customer', source),
          invoices ? 0 : countWhere(before.invoices, 'customer', source),
        );
      }
      // Customers not named are untouched, document for document.
      const untouched = (docs: Record<string, Document[]>) =>
        JSON.stringify((docs.jobs ?? []).filter((job) => String(job.byPuid) === IDS.valley_sprayers));
      assert.equal(untouched(after), untouched(before));
    }

    function assertPreviewWroteNothing(r: {
      result: CliResult;
      beforeState: string;
      afterState: string;
      history: string;
    }) {
      assert.equal(r.afterState, r.beforeState, 'preview leaves the data as it was');
      assertNoFile(r.history);
      assert.match(r.result.stdout, /Preview only: no changes were made\.\n$/);
    }

    it('1. preview by usernames lists the conflicts, exits 3 and writes nothing', async () => {
      const r = await run([
        '--preview',
        '--sources',
        'acme_aviation,regional_ag',
        '--destination',
        'consolidated_ag',
      ]);
      assert.equal(r.result.code, 3, r.result.stderr);
      assert.match(r.result.stdout, /acme_aviation\s+507f1f77bcf86cd799439011/);
      assert.match(
        r.result.stdout,
        /"john_farmer": incoming john_farmer 507f1f77bcf86cd799439015 \(kind 3, of acme_aviation\) vs existing John_Farmer 5593f2609e3c7a51d23a1c09/,
      );
      assert.match(r.result.stdout, /"pilot_mike"/);
      assert.match(r.result.stdout, /jobs\s+byPuid\s+11\n/);
      assert.match(
        r.result.stdout,
        /Execution would be BLOCKED:\n {2}- 2 username conflict\(s\); rename the accounts first, or re-run with --merge-conflicts\n/,
      );
      assertPreviewWroteNothing(r);
    });

    it('1. preview by ids and mixed produce the same plan as by usernames', async () => {
      const fingerprint = (result: CliResult) => /Plan fingerprint: ([0-9a-f]{16})/.exec(result.stdout)?.[1];
      const names = await run([
        '--preview',
        '--sources',
        'acme_aviation,regional_ag',
        '--destination',
        'consolidated_ag',
      ]);
      const ids = await run([
        '--preview',
        '--sources',
        `${IDS.acme_aviation},${IDS.regional_ag}`,
        '--destination',
        IDS.consolidated_ag,
      ]);
      const mixed = await run([
        '--preview',
        '--sources',
        `acme_aviation,${IDS.regional_ag}`,
        '--destination',
        'consolidated_ag',
      ]);
      assert.ok(fingerprint(names.result));
      assert.equal(fingerprint(ids.result), fingerprint(names.result));
      assert.equal(fingerprint(mixed.result), fingerprint(names.result));
      for (const r of [ids, mixed]) assertPreviewWroteNothing(r);
    });

    it('preview of a clean migration exits 0 and says it would proceed', async () => {
      const r = await run(['--preview', '--sources', 'regional_ag', '--destination', 'consolidated_ag']);
      assert.equal(r.result.code, 0, r.result.stderr);
      assert.match(r.result.stdout, /Username conflicts: none/);
      assert.match(r.result.stdout, /Execution would proceed\./);
      assertPreviewWroteNothing(r);
    });

    it('preview --json is one plain JSON document with hex ids and numeric counts', async () => {
      const r = await run([
        '--preview',
        '--json',
        '--sources',
        'acme_aviation',
        '--destination',
        'consolidated_ag',
      ]);
      assert.equal(r.result.code, 3);
      const output = JSON.parse(r.result.stdout);
      assert.equal(output.wouldProceed, false);
      assert.equal(output.plan.destination._id, IDS.consolidated_ag);
      assert.equal(output.plan.conflicts.length, 2);
      assert.equal(output.plan.conflicts[0].incoming._id, IDS.john_farmer);
      const jobs = output.plan.steps.find((s: Document) => s.collection === 'jobs' && s.field === 'byPuid');
      assert.equal(jobs.expected, 6);
      assertNoFile(r.history);
    });

    it('1. executing into a destination with conflicts aborts, writes nothing, records failed, exits 3', async () => {
      const r = await run(['--sources', 'acme_aviation', '--destination', 'consolidated_ag']);
      assert.equal(r.result.code, 3, r.result.stderr);
      assert.match(r.result.stderr, /Migration aborted due to conflicts/);
      assert.match(r.result.stderr, /--merge-conflicts/);
      assert.match(r.result.stderr, /rename/);
      assert.equal(r.afterState, r.beforeState);
      const record = lastRecord(r.history);
      assert.equal(record.status, 'failed');
      assert.equal(record.conflicts.length, 2);
      assert.deepEqual(record.stats.errors, [record.error?.message]);
      assert.equal(record.error?.exitCode, 3);
    });

    it('1. single customer migration by usernames moves everything and deactivates the source', async () => {
      const r = await run(['--sources', 'regional_ag', '--destination', 'consolidated_ag']);
      assert.equal(r.result.code, 0, r.result.stderr);
      assertMigrated(r.before, r.after, [IDS.regional_ag], IDS.consolidated_ag);
      assert.match(r.result.stderr, /jobs\.byPuid: re-point to destination: matched 5, modified 5/);
      const record = lastRecord(r.history);
      assert.equal(record.status, 'completed');
      assert.deepEqual(record.sources, [{ id: IDS.regional_ag, username: 'regional_ag' }]);
      assert.deepEqual(record.destination, { id: IDS.consolidated_ag, username: 'consolidated_ag' });
      assert.deepEqual(record.options, { mergeConflicts: false, convertToAdmin: false, skipInvoices: false });
      assert.deepEqual(record.stats.errors, []);
      assert.deepEqual(record.stats.customerRefs['jobs.byPuid'], { matched: 5, modified: 5 });
      assert.deepEqual(record.stats.customerRefs['invoices.customer'], { matched: 2, modified: 2 });
      assert.equal(
        record.stats.documentsModified,
        5 + 5 + 2 + 1 + 1,
        'references, the source and the destination mark',
      );
      assert.ok(Date.parse(record.finishedAt) >= Date.parse(record.startedAt));
    });

    it('1. single customer migration by ids is the same migration', async () => {
      const r = await run(['--sources', IDS.regional_ag, '--destination', IDS.consolidated_ag]);
      assert.equal(r.result.code, 0, r.result.stderr);
      assertMigrated(r.before, r.after, [IDS.regional_ag], IDS.consolidated_ag);
    });

    it('2. three regional accounts consolidate into the corporate account', async () => {
      const r = await run(['--sources', 'acme_west,acme_east,acme_south', '--destination', 'acme_corporate']);
      assert.equal(r.result.code, 0, r.result.stderr);
      assertMigrated(r.before, r.after, [IDS.acme_west, IDS.acme_east, IDS.acme_south], IDS.acme_corporate);
      const record = lastRecord(r.history);
      assert.deepEqual(
        record.sources.map((s) => s.username),
        ['acme_west', 'acme_east', 'acme_south'],
      );
      assert.deepEqual(record.stats.sourceCustomers, { matched: 3, modified: 3 });
    });

    it('2. the guide id example names a customer this data set lacks: exit 2, named, nothing written', async () => {
      const r = await run([
        '--sources',
        '507f1f77bcf86cd799439011,507f1f77bcf86cd799439012,507f1f77bcf86cd799439013',
        '--destination',
        '507f191e810c19729de860ea',
      ]);
      assert.equal(r.result.code, 2);
      assert.match(r.result.stderr, /^Error: Source customer\(s\) not found: 507f1f77bcf86cd799439013;/m);
      assert.equal(r.afterState, r.beforeState);
      assertNoFile(r.history);
    });

    it('5. --skip-invoices moves everything but the invoices', async () => {
      const r = await run([
        '--sources',
        IDS.regional_ag,
        '--destination',
        IDS.consolidated_ag,
        '--skip-invoices',
      ]);
      assert.equal(r.result.code, 0, r.result.stderr);
      assertMigrated(r.before, r.after, [IDS.regional_ag], IDS.consolidated_ag, false);
      assert.deepEqual(r.after.invoices, r.before.invoices, 'invoices are byte-for-byte as they were');
      const record = lastRecord(r.history);
      assert.equal(record.options?.skipInvoices, true);
      assert.equal(record.stats.customerRefs['invoices.customer'], undefined);
    });

    it('5. preview shows invoices as skipped', async () => {
      const r = await run([
        '--preview',
        '--sources',
        'regional_ag',
        '--destination',
        'consolidated_ag',
        '--skip-invoices',
      ]);
      assert.equal(r.result.code, 0);
      assert.match(r.result.stdout, /invoices\s+customer\s+2\s+skipped \(--skip-invoices\)/);
      assertPreviewWroteNothing(r);
    });

    it('6. --output-file puts the history where asked, creating its folder', async () => {
      const loaded = await backend.load(demoData());
      const file = join(dir.path, 'var', 'log', 'agmission', 'migrations', 'customer_migration_2025.json');
      const result = await runCli([
        '--sources',
        IDS.regional_ag,
        '--destination',
        IDS.consolidated_ag,
        '--output-file',
        file,
        ...loaded.args,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(readHistoryFile(file).length, 1);
      assert.equal(lastRecord(file).status, 'completed');
      assertNoFile(`${file}.lock`);
    });

    it('history appends: two runs, two records, in order', async () => {
      const loaded = await backend.load(demoData());
      const file = join(dir.path, 'appends.json');
      const first = await runCli([
        '--sources',
        'acme_west',
        '--destination',
        'acme_corporate',
        '--output-file',
        file,
        ...loaded.args,
      ]);
      const second = await runCli([
        '--sources',
        'acme_east',
        '--destination',
        'acme_corporate',
        '--output-file',
        file,
        ...loaded.args,
      ]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(
        readHistoryFile(file).map((record) => record.sources[0]?.username),
        ['acme_west', 'acme_east'],
      );
    });

    it('--config adds a collection to the map: its references move in the same transaction', async () => {
      const data = demoData();
      const applications = [IDS.regional_ag, IDS.regional_ag, IDS.valley_sprayers].map((customer) => ({
        _id: new ObjectId(),
        customer: new ObjectId(customer),
        operator: new ObjectId(IDS.john_farmer),
      }));
      data.set('applications', applications);
      const config = join(dir.path, 'map.json');
      writeFileSync(
        config,
        JSON.stringify({
          customerRefs: {
            users: ['parent'],
            jobs: ['byPuid'],
            invoices: ['customer'],
            applications: ['customer'],
          },
        }),
      );
      const r = await runOnDemoData(data, [
        '--sources',
        'regional_ag',
        '--destination',
        'consolidated_ag',
        '--config',
        config,
      ]);
      assert.equal(r.result.code, 0, r.result.stderr);
      assert.equal(countWhere(r.after.applications, 'customer', IDS.consolidated_ag), 2);
      assert.equal(countWhere(r.after.applications, 'customer', IDS.valley_sprayers), 1);
      assert.deepEqual(lastRecord(r.history).stats.customerRefs['applications.customer'], {
        matched: 2,
        modified: 2,
      });
    });
  });
}
