import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { ObjectId } from 'mongodb';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTarget, TransactionStore } from '../../src/store/types.js';
import { lastRecord } from '../helpers/assertions.js';
import { allBackends, journalOf, testOn } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS, oid } from '../helpers/data.js';

/**
 * What the migration's transaction enforces itself, on the plan it made again inside: the plan's counts, and
 * its blockers. Each test changes what the transaction sees (a store reporting another count, a clash written
 * just before it starts) and checks that nothing was committed.
 */
const ARGS = ['--sources', 'acme_west,acme_east', '--destination', 'acme_corporate'];

/** The CLI's store, with `tx` replaced inside the transaction by what `tap` makes of it. */
function tapped(tap: (tx: TransactionStore) => TransactionStore) {
  return async (target: StoreTarget): Promise<Store> => {
    const store = await openStore(target);
    const wrapped: Store = Object.create(store);
    wrapped.transaction = (work, options) => store.transaction((tx) => work(tap(tx)), options);
    return wrapped;
  };
}

for (const backend of await allBackends('apply')) {
  describe(`the migration's transaction on the ${backend.name} back end`, () => {
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
      return { loaded, history, args: [...ARGS, ...loaded.args, '--output-file', history] };
    };

    for (const extra of [1, -1]) {
      it(`an update matching ${extra > 0 ? 'one more' : 'one fewer'} document than the plan expected: exit 1, nothing committed, a failed record`, async () => {
        const { loaded, history, args } = await setUp();
        const before = await loaded.state();
        const openStore = tapped((tx) => {
          const wrapped: TransactionStore = Object.create(tx);
          let updates = 0;
          wrapped.updateMany = async (...update) => {
            const result = await tx.updateMany(...update);
            updates += 1;
            return updates === 1 ? { ...result, matched: result.matched + extra } : result;
          };
          return wrapped;
        });
        const result = await runCli(args, { openStore });
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          /matched (\d+) documents where the plan expected (\d+); nothing was committed, run --preview again/,
        );
        assert.equal(await loaded.state(), before, 'nothing committed');
        assert.deepEqual(await journalOf(loaded.target), [], 'no journal entry');
        assert.equal(lastRecord(history).status, 'failed');
      });
    }

    it('a clashing sub-account created under the destination just before the transaction: the re-scan inside blocks it, exit 3, nothing written', async () => {
      const { loaded, history, args } = await setUp();
      // acme_west's west_pilot_ray, now also under the destination: a conflict the first scan did not see.
      const clash = {
        _id: new ObjectId(),
        username: 'west_pilot_ray',
        kind: '5',
        parent: oid(IDS.acme_corporate),
        active: true,
        markedDelete: false,
      };
      let inserted = '';
      const openClashing = async (target: StoreTarget): Promise<Store> => {
        const store = await openStore(target);
        const wrapped: Store = Object.create(store);
        wrapped.transaction = async (work, options) => {
          await store.transaction((tx) => tx.insertMany('users', [clash]));
          inserted = await loaded.state();
          return store.transaction(work, options);
        };
        return wrapped;
      };
      const result = await runCli(args, { openStore: openClashing });
      assert.equal(result.code, 3, result.stderr);
      assert.match(
        result.stderr,
        /Error: Migration aborted: 1 username conflict\(s\); rename the accounts first, or re-run with --merge-conflicts/,
      );
      assert.ok(inserted, 'the clash was written before the transaction');
      assert.equal(await loaded.state(), inserted, 'nothing written by the migration');
      assert.deepEqual(await journalOf(loaded.target), []);
      assert.equal(lastRecord(history).status, 'failed');
    });
  });
}
