import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTarget, TransactionStore } from '../../src/store/types.js';
import { lastRecord } from '../helpers/assertions.js';
import { allBackends, journalOf, testOn } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

/**
 * The journal holds exactly the ids the plan moves: a journal read that yields one id fewer (or more) than the
 * plan's count stops the migration before its update, even though the update itself would match the plan.
 */
const ARGS = ['--sources', 'acme_west,acme_east', '--destination', 'acme_corporate'];

/** The journal's read of the ids a step moves (a chunk per batch: 1000); `change` edits what it yields. */
function journalRead(change: (ids: AsyncIterable<object>) => AsyncIterable<object>) {
  return async (target: StoreTarget): Promise<Store> => {
    const store = await openStore(target);
    const wrapped: Store = Object.create(store);
    wrapped.transaction = (work, options) =>
      store.transaction((tx) => {
        const tapped: TransactionStore = Object.create(tx);
        let changed = false;
        tapped.find = (collection, filter, findOptions) => {
          const found = tx.find(collection, filter, findOptions);
          if (changed || findOptions?.batchSize !== 1_000) return found;
          changed = true;
          return change(found);
        };
        return work(tapped);
      }, options);
    return wrapped;
  };
}

async function* withoutFirst(documents: AsyncIterable<object>): AsyncIterable<object> {
  let first = true;
  for await (const document of documents) {
    if (!first) yield document;
    first = false;
  }
}

async function* withFirstTwice(documents: AsyncIterable<object>): AsyncIterable<object> {
  let first = true;
  for await (const document of documents) {
    if (first) yield document;
    first = false;
    yield document;
  }
}

for (const backend of await allBackends('journal')) {
  describe(`the journal's count on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    let runs = 0;

    for (const [what, change] of [
      ['one id fewer', withoutFirst],
      ['one id more', withFirstTwice],
    ] as const) {
      it(`a journal read with ${what} than the plan moves: exit 1, nothing committed, a failed record`, async () => {
        runs += 1;
        const loaded = await backend.load(demoData());
        const history = join(dir.path, `history-${runs}.json`);
        const before = await loaded.state();
        const result = await runCli([...ARGS, ...loaded.args, '--output-file', history], {
          openStore: journalRead(change),
        });
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          /: \d+ documents to journal where the plan expected \d+; rolled back, run --preview again/,
        );
        assert.equal(await loaded.state(), before, 'nothing committed');
        assert.deepEqual(await journalOf(loaded.target), []);
        assert.equal(lastRecord(history).status, 'failed');
      });
    }
  });
}
