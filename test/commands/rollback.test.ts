import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { ObjectId } from 'mongodb';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTarget } from '../../src/store/types.js';
import { assertNoFile, lastRecord } from '../helpers/assertions.js';
import { allBackends, testOn } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS, oid } from '../helpers/data.js';

for (const backend of await allBackends('rollback-command')) {
  describe(`rollback on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });

    // The pre-check refuses a lock held by another run, so only a look from inside shows the rollback takes it.
    it('rollback holds the history lock while its transaction runs, and releases it', async () => {
      const loaded = await backend.load(demoData());
      const history = join(dir.path, 'held-lock.json');
      const place = [...loaded.args, '--output-file', history];
      const migrated = await runCli(['--sources', 'acme_west', '--destination', 'acme_corporate', ...place]);
      assert.equal(migrated.code, 0, migrated.stderr);
      const id = lastRecord(history).id;
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
      const result = await runCli(['rollback', id, ...place], { openStore: watching });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.equal(lastRecord(history).status, 'rolled_back');
      assert.ok(seen.length > 0 && seen.every(Boolean), 'the lock file exists inside the transaction');
      assertNoFile(`${history}.lock`);
    });

    // The drift check before the transaction passed; only the one inside it can see a change made in between.
    it('a moved job changed again just before the transaction: the drift check inside refuses it, exit 3, nothing written', async () => {
      const loaded = await backend.load(demoData());
      const history = join(dir.path, 'late-drift.json');
      const place = [...loaded.args, '--output-file', history];
      const migrated = await runCli(['--sources', 'acme_west', '--destination', 'acme_corporate', ...place]);
      assert.equal(migrated.code, 0, migrated.stderr);
      const id = lastRecord(history).id;
      let drifted = '';
      const drifting = async (target: StoreTarget): Promise<Store> => {
        const store = await openStore(target);
        const wrapped: Store = Object.create(store);
        wrapped.transaction = async (work, options) => {
          await store.transaction((tx) =>
            tx.updateMany('jobs', { byPuid: oid(IDS.acme_corporate) }, { $set: { byPuid: new ObjectId() } }),
          );
          drifted = await loaded.state();
          return store.transaction(work, options);
        };
        return wrapped;
      };
      const result = await runCli(['rollback', id, ...place], { openStore: drifting });
      assert.equal(result.code, 3, result.stdout + result.stderr);
      assert.match(result.stderr, /Rollback refused: /);
      assert.ok(drifted, 'the change was written before the transaction');
      assert.equal(await loaded.state(), drifted, 'nothing written by the rollback');
      assert.notEqual(lastRecord(history).status, 'rolled_back');
    });
  });
}
