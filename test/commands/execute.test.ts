import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTarget } from '../../src/store/types.js';
import { assertNoFile, lastRecord, readHistoryFile } from '../helpers/assertions.js';
import { allBackends, journalOf, testOn } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';

for (const backend of await allBackends('execute')) {
  describe(`execute on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });

    /** The demo data, freshly loaded: the arguments that point the tool at it. */
    const demo = async () => (await backend.load(demoData())).args;

    it('committed, but the history file cannot take the record: COMPLETED, the record printed, exit 4', async () => {
      const loaded = await backend.load(demoData());
      const history = join(dir.path, 'lost-history.json');
      // The history path turns into a folder between the commit and the record.
      const breaking = async (target: StoreTarget): Promise<Store> => {
        const store = await openStore(target);
        const wrapped: Store = Object.create(store);
        wrapped.transaction = async (work, options) => {
          const result = await store.transaction(work, options);
          mkdirSync(history);
          return result;
        };
        return wrapped;
      };
      const result = await runCli(
        [
          '--sources',
          'acme_west',
          '--destination',
          'acme_corporate',
          ...loaded.args,
          '--output-file',
          history,
        ],
        { openStore: breaking },
      );
      assert.equal(result.code, 4, result.stderr);
      assert.match(
        result.stderr,
        /Error: The migration COMPLETED, but its record could not be appended to .*lost-history\.json \(.*\); save the record printed above/,
      );
      const printed = JSON.parse(
        result.stderr.slice(result.stderr.indexOf('{'), result.stderr.lastIndexOf('}') + 1),
      );
      assert.equal(printed.status, 'completed');
      assert.ok(printed.journal.documents > 0);
      const users = (await loaded.dump()).users ?? [];
      assert.equal(users.find((u) => String(u._id) === IDS.acme_west)?.markedDelete, true, 'it did commit');
      assert.doesNotMatch(result.stderr, /rolled back|nothing was committed/);
    });

    for (const mode of ['--json', 'text']) {
      it(`committed, then its ${mode === 'text' ? 'report' : 'JSON output'} fails: COMPLETED, exit 4, the completed record and no failed one`, async () => {
        const loaded = await backend.load(demoData());
        const history = join(dir.path, `output-fails-${mode}.json`);
        let thrown = false;
        const result = await runCli(
          [
            ...(mode === '--json' ? ['--json'] : []),
            '--sources',
            'acme_west',
            '--destination',
            'acme_corporate',
            ...loaded.args,
            '--output-file',
            history,
          ],
          {
            // The terminal goes away as the outcome is printed (a closed pipe, a dropped ssh session).
            stdout: (text) => {
              if (!thrown && /completed/i.test(text)) {
                thrown = true;
                throw new Error('EPIPE: broken pipe, write');
              }
            },
          },
        );
        assert.ok(thrown, 'the output failed');
        assert.equal(result.code, 4, result.stderr);
        assert.match(
          result.stderr,
          /Error: The migration [0-9a-f-]{36} COMPLETED, but what follows the commit failed \(EPIPE: broken pipe, write\); run .*verify [0-9a-f-]{36}/,
        );
        assert.doesNotMatch(result.stderr, /nothing was committed|rolled back/);
        const records = readHistoryFile(history);
        assert.deepEqual(
          records.map((record) => record.status),
          ['completed'],
          'the completed record, and no failed one',
        );
        const head = (await journalOf(loaded.target)).find((entry) => entry.type === 'migration');
        assert.equal(head?._id, records[0]?.id, 'it did commit');
      });
    }

    it('execute holds the history lock while its transaction runs', async () => {
      const loaded = await backend.load(demoData());
      const history = join(dir.path, 'held-lock.json');
      const seen: boolean[] = [];
      const watching = async (target: StoreTarget): Promise<Store> => {
        const store = await openStore(target);
        const wrapped: Store = Object.create(store);
        wrapped.transaction = (work, options) =>
          store.transaction((tx) => {
            seen.push(existsSync(`${history}.lock`));
            return work(tx);
          }, options);
        return wrapped;
      };
      const result = await runCli(
        [
          '--sources',
          'acme_west',
          '--destination',
          'acme_corporate',
          ...loaded.args,
          '--output-file',
          history,
        ],
        { openStore: watching },
      );
      assert.equal(result.code, 0, result.stderr);
      assert.ok(seen.length > 0 && seen.every(Boolean), 'the lock file exists inside the transaction');
      assertNoFile(`${history}.lock`);
    });

    it('a migration holding the history lock keeps a second one out, which changes and records nothing', async () => {
      const loaded = await backend.load(demoData());
      const before = await loaded.state();
      const history = join(dir.path, 'locked-history.json');
      writeFileSync(`${history}.lock`, 'pid 1 on other-host since 2026-01-01T00:00:00.000Z\n');
      const result = await runCli([
        '--sources',
        'acme_west',
        '--destination',
        'acme_corporate',
        ...loaded.args,
        '--output-file',
        history,
      ]);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /^Error: Another migration is running \(lock .*locked-history\.json\.lock: pid 1 on other-host since 2026-01-01T00:00:00\.000Z\); wait for it, or delete the lock/m,
      );
      assert.equal(await loaded.state(), before);
      assertNoFile(history);
      assert.equal(
        readFileSync(`${history}.lock`, 'utf8'),
        'pid 1 on other-host since 2026-01-01T00:00:00.000Z\n',
        'the other run keeps its lock',
      );
    });

    it('--json on execute prints one document: the record and the plan that ran', async () => {
      const history = join(dir.path, 'json-history.json');
      const result = await runCli([
        '--json',
        '--sources',
        'acme_west',
        '--destination',
        'acme_corporate',
        ...(await demo()),
        '--output-file',
        history,
      ]);
      assert.equal(result.code, 0, result.stderr);
      const output = JSON.parse(result.stdout);
      assert.equal(output.status, 'completed');
      assert.deepEqual(output.record, lastRecord(history));
      assert.equal(output.plan.sources[0].username, 'acme_west');
      assert.match(
        result.stderr,
        /users\.parent: re-point to destination: matched 3, modified 3/,
        'progress stays on stderr',
      );
    });

    it('--json on a conflict abort prints the failure with its conflicts, exit 3', async () => {
      const history = join(dir.path, 'json-conflict.json');
      const result = await runCli([
        '--json',
        '--sources',
        'acme_aviation',
        '--destination',
        'consolidated_ag',
        ...(await demo()),
        '--output-file',
        history,
      ]);
      assert.equal(result.code, 3);
      const output = JSON.parse(result.stdout);
      assert.equal(output.status, 'failed');
      assert.equal(output.error.exitCode, 3);
      assert.equal(output.record.conflicts.length, 2);
    });

    it('--json on an input error prints the error as JSON, exit 2', async () => {
      const result = await runCli([
        '--json',
        '--preview',
        '--sources',
        'nobody',
        '--destination',
        'acme_corporate',
        ...(await demo()),
      ]);
      assert.equal(result.code, 2);
      assert.deepEqual(JSON.parse(result.stdout).error.exitCode, 2);
    });
  });
}
