import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openStore } from '../../src/store/index.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import type { Store, StoreTarget, TransactionStore } from '../../src/store/types.js';
import { lastRecord, readHistoryFile } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

let files = 0;
function setUp() {
  files += 1;
  const snapshot = join(dir.path, `data-${files}.json`);
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const history = join(dir.path, `history-${files}.json`);
  const args = [
    '--sources',
    'acme_west,acme_east',
    '--destination',
    'acme_corporate',
    '--snapshot',
    snapshot,
    '--output-file',
    history,
  ];
  return { snapshot, history, args, bytes: readFileSync(snapshot) };
}

/**
 * Delivers signals at a chosen point of the run, through the tool's signal source (the test runner would end
 * on a real SIGINT to this process; the launcher test sends real ones to a child).
 */
function signalling(
  source: EventEmitter,
  when: 'update' | 'last-write' | 'after-commit',
  signals: NodeJS.Signals[],
): (target: StoreTarget) => Promise<Store> {
  let sent = false;
  const send = () => {
    if (sent) return;
    sent = true;
    for (const signal of signals) source.emit(signal, signal);
  };
  return async (target) => {
    const store = await openStore(target);
    const wrapped: Store = Object.create(store);
    let committed = false;
    wrapped.transaction = async (work, options) => {
      const result = await store.transaction((tx) => {
        const tapped: TransactionStore = Object.create(tx);
        tapped.updateMany = async (...args) => {
          if (when === 'update') send();
          return tx.updateMany(...args);
        };
        tapped.insertMany = async (collection, documents) => {
          await tx.insertMany(collection, documents);
          // The journal's head is the transaction's last write.
          if (when === 'last-write' && documents.some((document) => document.type === 'migration')) send();
        };
        return work(tapped);
      }, options);
      committed = true;
      return result;
    };
    wrapped.count = async (...args) => {
      if (when === 'after-commit' && committed) send();
      return store.count(...args);
    };
    return wrapped;
  };
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  test(`${signal} before the commit: the run stops safely, nothing is committed, exit 1, a failed record, no lock left`, async () => {
    const { snapshot, history, args, bytes } = setUp();
    const signals = new EventEmitter();
    const result = await runCli(args, { signals, openStore: signalling(signals, 'update', [signal]) });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`Interrupted \\(${signal}\\): stopping at the next safe point`));
    assert.match(
      result.stderr,
      new RegExp(`Error: Interrupted \\(${signal}\\) before the commit: the snapshot file was not changed`),
    );
    assert.deepEqual(readFileSync(snapshot), bytes);
    const record = lastRecord(history);
    assert.equal(record.status, 'failed');
    assert.equal(existsSync(`${history}.lock`), false);
    assert.equal(existsSync(`${snapshot}.lock`), false);
  });
}

test('a signal right after the last write: the commit does not happen, exit 1, the file unchanged', async () => {
  const { snapshot, history, args, bytes } = setUp();
  const signals = new EventEmitter();
  const result = await runCli(args, { signals, openStore: signalling(signals, 'last-write', ['SIGTERM']) });
  assert.equal(result.code, 1, result.stderr);
  assert.match(
    result.stderr,
    /Error: Interrupted \(SIGTERM\) before the commit: the snapshot file was not changed/,
  );
  assert.deepEqual(readFileSync(snapshot), bytes);
  assert.equal(lastRecord(history).status, 'failed');
});

test('a signal after the commit: the completed record is written and printed, COMPLETED, exit 4', async () => {
  const { history, args } = setUp();
  const signals = new EventEmitter();
  const result = await runCli(args, { signals, openStore: signalling(signals, 'after-commit', ['SIGTERM']) });
  assert.equal(result.code, 4, result.stderr);
  assert.match(
    result.stderr,
    /Error: Interrupted after the commit: the migration COMPLETED and its record [0-9a-f-]{36} was appended/,
  );
  const record = lastRecord(history);
  assert.equal(record.status, 'completed');
  assert.match(result.stderr, new RegExp(`"id": "${record.id}"`), 'the record is printed too');
  assert.equal(readHistoryFile(history).length, 1);
});

test('a second signal forces the stop at once, saying what is known', async () => {
  const { args } = setUp();
  const exits: number[] = [];
  const signals = new EventEmitter();
  const result = await runCli(args, {
    signals,
    openStore: signalling(signals, 'update', ['SIGINT', 'SIGINT']),
    exit: (code) => exits.push(code),
  });
  assert.deepEqual(exits.slice(0, 1), [1]);
  assert.match(result.stderr, /Forced to stop: stopped before the commit: nothing was committed/);
});

test('a forced stop after a rollback committed says the rollback COMPLETED (exit 4, the record printed), not "unknown"', async () => {
  const { snapshot, history, args } = setUp();
  const migration = await runCli(args);
  assert.equal(migration.code, 0, migration.stderr);
  const migrationId = lastRecord(history).id;
  const rollbackArgs = ['rollback', migrationId, '--snapshot', snapshot, '--output-file', history];
  const exits: number[] = [];
  const signals = new EventEmitter();
  const result = await runCli(rollbackArgs, {
    signals,
    exit: (code) => exits.push(code),
    openStore: async (target, options) => {
      const store = await openStore(target, options);
      const wrapped: Store = Object.create(store);
      wrapped.transaction = async (work, transactionOptions) => {
        const restored = await store.transaction(work, transactionOptions);
        // Signals arrive on the event loop, after the tool has taken note of the commit.
        setImmediate(() => {
          signals.emit('SIGINT', 'SIGINT');
          signals.emit('SIGINT', 'SIGINT');
        });
        return restored;
      };
      return wrapped;
    },
  });
  assert.deepEqual(exits, [4], result.stderr);
  assert.match(
    result.stderr,
    new RegExp(
      `Forced to stop: the rollback COMPLETED \\(migration ${migrationId} reversed\\); its record could not be written in time, here it is:\\n\\{\\n  "id": "[0-9a-f-]{36}",\\n  "status": "rolled_back"`,
    ),
  );
});
