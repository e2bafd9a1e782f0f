import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTarget } from '../../src/store/types.js';
import { assertNoFile, lastRecord } from '../helpers/assertions.js';
import { allBackends, testOn } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

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
  });
}
