import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSeed, DESTINATION_USERNAME, SOURCE_USERNAME, writeSnapshotSeed } from '../../bench/seed.js';
import { openReadOnlyStore, openStore } from '../../src/store/index.js';
import type { ReadOnlyStore, Store, StoreTarget, TransactionStore } from '../../src/store/types.js';
import { lastRecord } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';

/**
 * A large snapshot is worked on in batches between which the event loop turns, so a signal is seen while the
 * work goes on, not after it. Signals are sent through the tool's signal source from inside the run (a real
 * SIGINT would end the test runner): each is emitted by a callback queued on the event loop, which runs only
 * when the work lets the loop turn.
 */
const dir = tempDir();
const seedFile = join(dir.path, 'seed.json');
const migratedFile = join(dir.path, 'migrated.json');
const migrate = ['--sources', SOURCE_USERNAME, '--destination', DESTINATION_USERNAME, '--merge-conflicts'];
let seedBytes: Buffer;
let migratedBytes: Buffer;
let migrationId: string;
before(async () => {
  await writeSnapshotSeed(seedFile, createSeed(5_000));
  seedBytes = readFileSync(seedFile);
  writeFileSync(migratedFile, seedBytes);
  const history = join(dir.path, 'migrated-history.json');
  const migrated = await runCli([...migrate, '--snapshot', migratedFile, '--output-file', history]);
  assert.equal(migrated.code, 0, migrated.stderr);
  migrationId = lastRecord(history).id;
  migratedBytes = readFileSync(migratedFile);
});
after(() => dir.remove());

let copies = 0;
/** A fresh copy per run: the originals are never touched. */
function copyOf(bytes: Buffer): string {
  copies += 1;
  const file = join(dir.path, `run-${copies}.json`);
  writeFileSync(file, bytes);
  return file;
}

test('a signal during a long transaction on a snapshot stops it at the next turn: mid-transaction, exit 1, the file untouched', async () => {
  const file = copyOf(seedBytes);
  const history = join(dir.path, 'stopped-history.json');
  const signals = new EventEmitter();
  const updates: string[] = [];
  const tapped = async (target: StoreTarget): Promise<Store> => {
    const store = await openStore(target);
    const wrapped: Store = Object.create(store);
    wrapped.transaction = (work, options) =>
      store.transaction((tx) => {
        const counted: TransactionStore = Object.create(tx);
        counted.updateMany = (collection, filter, update) => {
          updates.push(collection);
          // Queued now, delivered when the work lets the loop turn.
          if (updates.length === 1) setImmediate(() => signals.emit('SIGINT', 'SIGINT'));
          return tx.updateMany(collection, filter, update);
        };
        return work(counted);
      }, options);
    return wrapped;
  };
  const result = await runCli([...migrate, '--snapshot', file, '--output-file', history], {
    signals,
    openStore: tapped,
  });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /Interrupted \(SIGINT\): stopping at the next safe point/);
  assert.match(
    result.stderr,
    /Error: Interrupted \(SIGINT\) before the commit: the snapshot file was not changed/,
  );
  // Without turns of the event loop the signal would arrive only after all 8 updates, just before the rename.
  assert.ok(updates.length >= 1 && updates.length < 8, `stopped inside the transaction (${updates})`);
  assert.deepEqual(readFileSync(file), seedBytes, 'the snapshot is byte for byte as it was');
  assert.equal(lastRecord(history).status, 'failed');
  assert.equal(existsSync(`${file}.lock`), false);
});

for (const [name, args] of [
  ['the preview', () => ['--preview', ...migrate]],
  ['verify', () => ['verify', migrationId]],
  ['the rollback preview', () => ['rollback', migrationId, '--preview']],
] as const) {
  test(`${name} stops at once on a signal, while it reads: exit 7, "it only reads", nothing written`, async () => {
    const bytes = name === 'the preview' ? seedBytes : migratedBytes;
    const file = copyOf(bytes);
    const signals = new EventEmitter();
    const events: string[] = [];
    const exits: number[] = [];
    let stopped = false;
    const reading = async (target: StoreTarget, options?: object): Promise<ReadOnlyStore> => {
      const store = await openReadOnlyStore(target, options);
      // Queued now, delivered when the reading lets the loop turn.
      setImmediate(() => signals.emit('SIGTERM', 'SIGTERM'));
      // The test's exit does not end the process: the run is cut short at its next read instead.
      return new Proxy(store, {
        get(object, key, receiver) {
          if (stopped && ['find', 'count', 'aggregate'].includes(String(key))) throw new Error('exited');
          return Reflect.get(object, key, receiver);
        },
      });
    };
    let stderr = '';
    let atExit = '';
    await runCli([...args(), '--snapshot', file, '--output-file', join(dir.path, 'unused.json')], {
      signals,
      openReadOnlyStore: reading,
      exit: (code) => {
        atExit = stderr;
        stopped = true;
        events.push('exit');
        exits.push(code);
      },
      stdout: () => events.push('report'),
      stderr: (text) => {
        stderr += text;
      },
    });
    assert.deepEqual(exits, [7], stderr);
    assert.equal(events[0], 'exit', `stopped while reading, before any result (${events})`);
    // On a loaded machine a read past 6 s also prints its progress line first; the stop is one line of its own.
    const lines = atExit.trimEnd().split('\n');
    assert.equal(
      lines.at(-1),
      `Interrupted (SIGTERM): ${name} stopped before it finished; it only reads, so nothing was changed`,
    );
    assert.doesNotMatch(atExit, /commit/, 'no "nothing was committed" for a run that never writes');
    assert.deepEqual(readFileSync(file), bytes);
    assert.equal(existsSync(join(dir.path, 'unused.json')), false);
  });
}
