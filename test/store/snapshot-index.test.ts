import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Document } from 'mongodb';
import { createSeed, DESTINATION_USERNAME, SOURCE_USERNAME, writeSnapshotSeed } from '../../bench/seed.js';
import { openReadOnlyStore } from '../../src/store/index.js';
import type { ReadOnlyStore, StoreTarget } from '../../src/store/types.js';
import { lastRecord } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';

const dir = tempDir();
after(() => dir.remove());

/**
 * How many stored documents a command looks at, counted on the snapshot store's own arrays: a linear command
 * looks at each a few times; one that scans a collection per journal chunk looks at N documents N/1000 times.
 */
async function documentsRead(args: string[], file: string): Promise<number> {
  let reads = 0;
  const counting = async (target: StoreTarget, options?: object): Promise<ReadOnlyStore> => {
    const store = await openReadOnlyStore(target, options);
    const { collections } = store as unknown as { collections: Map<string, Document[]> };
    for (const [name, documents] of collections) {
      collections.set(
        name,
        new Proxy(documents, {
          get(array, key, receiver) {
            if (typeof key === 'string' && /^\d+$/.test(key)) reads += 1;
            return Reflect.get(array, key, receiver);
          },
        }),
      );
    }
    return store;
  };
  const result = await runCli([...args, '--snapshot', file], { openReadOnlyStore: counting });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  return reads;
}

test('verify and rollback --preview read each document a bounded number of times: linear in N on a snapshot', async () => {
  const reads: Record<string, number[]> = { verify: [], 'rollback --preview': [] };
  for (const n of [1_000, 4_000]) {
    const file = join(dir.path, `seed-${n}.json`);
    await writeSnapshotSeed(file, createSeed(n));
    const history = join(dir.path, `history-${n}.json`);
    const migrated = await runCli([
      '--sources',
      SOURCE_USERNAME,
      '--destination',
      DESTINATION_USERNAME,
      '--merge-conflicts',
      '--snapshot',
      file,
      '--output-file',
      history,
    ]);
    assert.equal(migrated.code, 0, migrated.stderr);
    const id = lastRecord(history).id;
    reads.verify?.push(await documentsRead(['verify', id], file));
    reads['rollback --preview']?.push(await documentsRead(['rollback', id, '--preview'], file));
  }
  for (const [command, [small, large]] of Object.entries(reads)) {
    // Four times the documents: about four times the reads when linear, sixteen when quadratic.
    const growth = (large as number) / (small as number);
    assert.ok(growth < 5, `${command}: ${small} reads at N=1000, ${large} at N=4000 (x${growth.toFixed(1)})`);
  }
});
