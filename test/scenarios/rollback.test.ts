import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { BSON, type Document, ObjectId } from 'mongodb';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTarget, TransactionStore } from '../../src/store/types.js';
import { lastRecord, readHistoryFile } from '../helpers/assertions.js';
import { allBackends, journalOf, testOn } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { buildData, type Collections, demoData, IDS } from '../helpers/data.js';

/** The guide's scenarios 1 to 5, each as a migration that can run on the demo data. */
const SCENARIOS: [string, string[]][] = [
  ['1. single customer', ['--sources', 'acme_west', '--destination', 'acme_corporate']],
  [
    '2. regional accounts',
    ['--sources', 'acme_west,acme_east,acme_south', '--destination', 'acme_corporate'],
  ],
  [
    '3. known conflicts merged',
    ['--sources', 'acme_aviation', '--destination', 'consolidated_ag', '--merge-conflicts'],
  ],
  [
    '4. convert to admin',
    ['--sources', 'acme_west,acme_east', '--destination', 'acme_corporate', '--convert-to-admin'],
  ],
  [
    '5. skip invoices',
    ['--sources', IDS.regional_ag, '--destination', IDS.consolidated_ag, '--skip-invoices'],
  ],
];

function argsOf(scenario: number): string[] {
  const entry = SCENARIOS[scenario];
  assert.ok(entry, `no scenario ${scenario}`);
  return entry[1];
}

/** users, jobs and invoices as canonical Extended JSON: equal strings mean equal documents, types and order. */
function business(dump: Record<string, Document[]>): string {
  return BSON.EJSON.stringify(
    { users: dump.users, jobs: dump.jobs, invoices: dump.invoices },
    { relaxed: false },
  );
}

/** A change made behind the tool's back, through the store contract, on any back end. */
async function change(target: StoreTarget, work: (tx: TransactionStore) => Promise<unknown>): Promise<void> {
  const store: Store = await openStore(target);
  try {
    await store.transaction(async (tx) => {
      await work(tx);
    });
  } finally {
    await store.close();
  }
}

for (const backend of await allBackends('rollback')) {
  describe(`journal, verify and rollback on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    let runs = 0;
    const setUp = async (data: Collections = demoData()) => {
      runs += 1;
      const loaded = await backend.load(data);
      const history = join(dir.path, `history-${runs}.json`);
      const cli = (args: string[]) => runCli([...args, ...loaded.args, '--output-file', history]);
      return { loaded, history, cli };
    };
    const migrated = async (args: string[], data?: Collections) => {
      const context = await setUp(data);
      const original = await context.loaded.dump();
      const result = await context.cli(args);
      assert.equal(result.code, 0, result.stderr);
      return { ...context, original, id: lastRecord(context.history).id };
    };

    for (const [name, args] of SCENARIOS) {
      it(`${name}: migrate, verify, roll back, and users/jobs/invoices equal the original document for document`, async () => {
        const { loaded, cli, history, original, id } = await migrated(args);
        assert.notEqual(business(await loaded.dump()), business(original), 'the migration changed the data');
        const verified = await cli(['verify']);
        assert.equal(verified.code, 0, verified.stdout + verified.stderr);
        assert.match(verified.stdout, /All checks passed\./);

        const rollback = await cli(['rollback', id]);
        assert.equal(rollback.code, 0, rollback.stdout + rollback.stderr);
        assert.equal(
          business(await loaded.dump()),
          business(original),
          'the rollback restored every document exactly',
        );
        const record = lastRecord(history);
        assert.equal(record.status, 'rolled_back');
        assert.equal(record.rollsBack, id);
        const [head] = (await journalOf(loaded.target)).filter((entry) => entry._id === id);
        assert.equal(head?.status, 'rolled_back');
        assert.equal(head?.rolledBackBy, record.id);

        const after = await cli(['verify', id]);
        assert.equal(after.code, 0, after.stdout);
        assert.match(after.stdout, /\(rolled_back\)[\s\S]*PASS {2}references restored/);

        const state = await loaded.state();
        const historyBytes = readFileSync(history);
        for (const preview of [[], ['--preview'], ['--json']]) {
          const again = await cli(['rollback', id, ...preview]);
          assert.equal(again.code, 3, again.stderr);
          const refusal = `Migration ${id} (${head?.sources.map((s: Document) => s.username).join(', ')} -> ${head?.destination.username}) was already rolled back at ${head?.rolledBackAt.toISOString()} by ${record.id}; a migration is rolled back once, so there is nothing to undo`;
          assert.equal(again.stderr, `Error: ${refusal}\n`, 'one plain line');
          if (preview[0] === '--json') assert.equal(JSON.parse(again.stdout).error.message, refusal);
          else assert.equal(again.stdout, '', 'no plan, no drift list, no advice to restore by hand');
        }
        assert.equal(await loaded.state(), state, 'a refused rollback writes nothing');
        assert.deepEqual(readFileSync(history), historyBytes, 'and records nothing');
      });
    }

    it('the journal holds every re-pointed id, grouped by the value it held, and the accounts whole', async () => {
      const { loaded, original, id } = await migrated(argsOf(2));
      const entries = await journalOf(loaded.target);
      const head = entries.find((entry) => entry._id === id) as Document;
      assert.equal(head.type, 'migration');
      assert.deepEqual(
        head.accounts.map((a: Document) => [String(a._id), a.role]).sort(),
        [
          [IDS.acme_aviation, 'source'],
          [IDS.john_farmer, 'merged'],
          [IDS.pilot_mike_source, 'merged'],
        ].sort(),
      );
      const before = head.accounts.find((a: Document) => String(a._id) === IDS.john_farmer).before;
      assert.equal(
        BSON.EJSON.stringify(before, { relaxed: false }),
        BSON.EJSON.stringify(
          original.users?.find((u) => String(u._id) === IDS.john_farmer),
          { relaxed: false },
        ),
      );
      const chunks = entries.filter((entry) => entry.migration === id && entry.type === 'refs');
      const jobsMoved = chunks.filter((c) => c.collection === 'jobs' && c.field === 'byPuid');
      assert.deepEqual(
        jobsMoved.map((c) => [String(c.from), String(c.to)]),
        [[IDS.acme_aviation, IDS.consolidated_ag]],
      );
      const expected = (original.jobs ?? [])
        .filter((job) => String(job.byPuid) === IDS.acme_aviation)
        .map((j) => String(j._id));
      assert.deepEqual(jobsMoved.flatMap((c) => c.ids.map(String)).sort(), expected.sort());
    });

    it('drift: a journaled document changed since is listed, the rollback refused (exit 3), nothing written', async () => {
      const { loaded, cli, history, id } = await migrated(argsOf(0));
      const elsewhere = new ObjectId(IDS.valley_sprayers);
      const jobId = (await journalOf(loaded.target)).find((e) => e.type === 'refs' && e.collection === 'jobs')
        ?.ids[0];
      assert.ok(jobId);
      await change(loaded.target, (tx) =>
        tx.updateMany('jobs', { _id: jobId }, { $set: { byPuid: elsewhere } }),
      );
      const state = await loaded.state();
      const preview = await cli(['rollback', id, '--preview']);
      assert.equal(preview.code, 3);
      assert.match(
        preview.stdout,
        new RegExp(
          `Drift check: 1 document\\(s\\) changed since the migration:\\n  jobs ${String(jobId)}: byPuid is .*${IDS.valley_sprayers}.*, expected .*${IDS.acme_corporate}`,
        ),
      );
      assert.match(preview.stdout, /Rollback would be REFUSED/);
      const refused = await cli(['rollback', id]);
      assert.equal(refused.code, 3);
      assert.match(
        refused.stderr,
        /Rollback refused; nothing was written: 1 document\(s\) changed since the migration \(drift\)/,
      );
      assert.equal(await loaded.state(), state, 'nothing written');
      assert.equal(readHistoryFile(history).length, 1, 'no record for a refusal');
    });

    it('drift: an edited merged account refuses the rollback', async () => {
      const { loaded, cli, id } = await migrated(argsOf(2));
      await change(loaded.target, (tx) =>
        tx.updateMany(
          'users',
          { _id: new ObjectId(IDS.john_farmer) },
          { $set: { email: 'new@example.com' } },
        ),
      );
      const refused = await cli(['rollback', id, '--preview']);
      assert.equal(refused.code, 3);
      assert.match(
        refused.stdout,
        new RegExp(`\\n  users ${IDS.john_farmer}: merged account john_farmer edited since \\(email\\)\\n`),
      );
      assert.match(
        refused.stdout,
        new RegExp(
          `Account documents restored to their before-images: 3 \\(source acme_aviation ${IDS.acme_aviation}, merged john_farmer ${IDS.john_farmer}, merged pilot_mike ${IDS.pilot_mike_source}\\)`,
        ),
      );
    });

    it('a later migration that moved the destination onwards must be rolled back first', async () => {
      const { cli, id } = await migrated(argsOf(0));
      const onwards = await cli(['--sources', 'acme_corporate', '--destination', 'valley_sprayers']);
      assert.equal(onwards.code, 0, onwards.stderr);
      const refused = await cli(['rollback', id, '--preview']);
      assert.equal(refused.code, 3);
      assert.match(refused.stdout, /later moved these customers' data again: roll it back first/);
    });

    it('the journal is all-or-nothing with the migration: a failure after the updates leaves neither', async () => {
      const { loaded } = await setUp();
      const before = await loaded.dump();
      const failing = async (target: StoreTarget): Promise<Store> => {
        const store = await openStore(target);
        const wrapped: Store = Object.create(store);
        wrapped.transaction = (work, options) =>
          store.transaction((tx) => {
            const failingTx: TransactionStore = Object.create(tx);
            failingTx.insertMany = async (collection, documents) => {
              if (documents.some((document) => document.type === 'migration'))
                throw new Error('injected after the updates');
              return tx.insertMany(collection, documents);
            };
            return work(failingTx);
          }, options);
        return wrapped;
      };
      const result = await runCli(
        [...argsOf(1), ...loaded.args, '--output-file', join(dir.path, 'aon.json')],
        { openStore: failing },
      );
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /injected after the updates; nothing was committed/);
      assert.equal(business(await loaded.dump()), business(before));
      assert.deepEqual(await journalOf(loaded.target), [], 'no journal entry and no chunk');
    });

    it('verify fails on the item that is wrong: a reference left behind; a follow-up run then moves it', async () => {
      const { loaded, cli, history, id } = await migrated(argsOf(0));
      const straggler = new ObjectId();
      await change(loaded.target, (tx) =>
        tx.insertMany('jobs', [
          { _id: straggler, byPuid: new ObjectId(IDS.acme_west), name: 'written late' },
        ]),
      );
      const failed = await cli(['verify', id]);
      assert.equal(failed.code, 6, failed.stdout);
      assert.match(
        failed.stdout,
        /FAIL {2}nothing left behind: still referencing a source or merged account: jobs\.byPuid: 1/,
      );
      assert.match(failed.stdout, /PASS {2}moved documents/);
      assert.match(failed.stdout, /1 check\(s\) FAILED\./);

      const preview = await cli(['--preview', ...argsOf(0)]);
      assert.equal(preview.code, 0, preview.stdout + preview.stderr);
      assert.match(preview.stdout, /\[follow-up: already migrated here\]/);
      assert.match(preview.stdout, /jobs\s+byPuid\s+1\n/);
      const followUp = await cli(argsOf(0));
      assert.equal(followUp.code, 0, followUp.stderr);
      const record = lastRecord(history);
      assert.equal(record.sources[0]?.followUp, true);
      assert.deepEqual(record.stats.customerRefs['jobs.byPuid'], { matched: 1, modified: 1 });
      assert.equal(
        record.stats.sourceCustomers.matched,
        0,
        'the source document is left as the first run left it',
      );
      const moved = (await loaded.dump()).jobs?.find((job) => straggler.equals(job._id));
      assert.equal(String(moved?.byPuid), IDS.acme_corporate);
      const verified = await cli(['verify', id]);
      assert.equal(verified.code, 0, verified.stdout);
    });

    it('verify --scan-all finds a source id in a collection the map does not know', async () => {
      const data = demoData();
      data.set('audit_log', [
        { _id: new ObjectId(), event: 'login', account: { customer: new ObjectId(IDS.acme_west) } },
        { _id: new ObjectId(), event: 'export', customerHex: IDS.acme_west },
        { _id: new ObjectId(), event: 'noise', customer: new ObjectId(IDS.valley_sprayers) },
      ]);
      const { cli, id } = await migrated(argsOf(0), data);
      const plainVerify = await cli(['verify', id]);
      assert.equal(plainVerify.code, 0, plainVerify.stdout);
      const scanned = await cli(['verify', id, '--scan-all']);
      assert.equal(scanned.code, 6, scanned.stdout);
      assert.match(
        scanned.stdout,
        /FAIL {2}scan of every collection: fields holding a source's id: audit_log\.account\.customer: 1 \(e\.g\. [0-9a-f]{24}\); audit_log\.customerHex: 1/,
      );
      const json = JSON.parse((await cli(['verify', id, '--scan-all', '--json'])).stdout);
      assert.equal(json.passed, false);
      assert.deepEqual(
        json.checks.filter((c: Document) => !c.passed).map((c: Document) => c.name),
        ['scan of every collection'],
      );
    });

    it('the history file masks credentials in before-images; the journal keeps them', async () => {
      const { data } = buildData({
        hq: [{ username: 'ann', kind: '3' }],
        west: [{ username: 'Ann', kind: '3' }],
      });
      const users = data.get('users') ?? [];
      const loser = users.find((u) => u.username === 'Ann') as Document;
      Object.assign(loser, {
        passwordHash: 'bcrypt$secret',
        services: { resume: { loginTokens: ['tok'] } },
        monkey: 'kept',
      });
      const { loaded, history, id, cli } = await migrated(
        ['--sources', 'west', '--destination', 'hq', '--merge-conflicts'],
        data,
      );
      const text = readFileSync(history, 'utf8');
      assert.doesNotMatch(text, /bcrypt\$secret|"tok"/);
      const record = lastRecord(history);
      const before = record.mergedAccounts[0]?.before as Document;
      assert.equal(before.passwordHash, '[masked: the whole document is in the journal collection]');
      assert.equal(
        before.services.resume.loginTokens,
        '[masked: the whole document is in the journal collection]',
      );
      assert.equal(before.monkey, 'kept');
      const head = (await journalOf(loaded.target)).find((entry) => entry._id === id) as Document;
      assert.equal(
        head.accounts.find((a: Document) => a.role === 'merged').before.passwordHash,
        'bcrypt$secret',
      );
      const preview = await cli(['rollback', id, '--preview', '--json']);
      assert.equal(preview.code, 0, preview.stderr);
      assert.doesNotMatch(
        preview.stdout,
        /bcrypt\$secret|"tok"/,
        'the rollback preview names accounts, not secrets',
      );
      assert.deepEqual(
        JSON.parse(preview.stdout).plan.accounts.map((a: Document) => a.role),
        ['source', 'merged'],
      );
    });
  });
}
