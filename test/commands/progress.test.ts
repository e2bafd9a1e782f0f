import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '../../src/store/index.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import type { Store, StoreTarget } from '../../src/store/types.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

test('each step of a migration is printed when it starts and when it ends, with its own durations', async () => {
  const snapshot = join(dir.path, 'steps.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const result = await runCli([
    '--sources',
    'acme_aviation',
    '--destination',
    'consolidated_ag',
    '--merge-conflicts',
    '--snapshot',
    snapshot,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stderr.split('\n');
  const from = lines.indexOf('Applying in one transaction:');
  assert.match(
    lines[from + 1] ?? '',
    /^ {2}plan made again inside the transaction: [0-9a-f]{16} \(\d+ ms\)$/,
  );
  const steps = lines.slice(from + 2, lines.indexOf('  committing...'));
  assert.equal(steps.length, 18, 'nine steps, two lines each');
  for (let i = 0; i < steps.length; i += 2) {
    const [start, end] = [steps[i] as string, steps[i + 1] as string];
    const what = /^ {2}(.+): (\d+) document\(s\)(, journaling their ids first)?\.\.\.$/.exec(start);
    assert.ok(what, `a start line: ${start}`);
    const timing = what[3]
      ? '\\(journal \\d+ id\\(s\\) in \\d+ chunk\\(s\\): \\d+ ms, update: \\d+ ms\\)'
      : '\\(\\d+ ms\\)';
    assert.match(
      end,
      new RegExp(`^ {2}${literal(what[1] as string)}: matched ${what[2]}, modified \\d+ ${timing}$`),
      'its end line follows it',
    );
  }
  assert.match(lines[from + 20] ?? '', /^ {2}committing\.\.\.$/);
  assert.match(lines[from + 21] ?? '', /^ {2}committed \(\d+ ms\)$/);
});

test('a long phase is never silent: it says what it does past 6 s, and when it is done', async () => {
  const snapshot = join(dir.path, 'slow.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const slow = async (target: StoreTarget): Promise<Store> => {
    await sleep(6_300);
    const store = await openStore(target);
    const wrapped: Store = Object.create(store);
    wrapped.transaction = async (work, options) => {
      await sleep(6_300);
      return store.transaction(work, options);
    };
    return wrapped;
  };
  const result = await runCli(
    ['--sources', 'acme_west', '--destination', 'acme_corporate', '--snapshot', snapshot],
    {
      openStore: slow,
    },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stderr,
    /^Reading snapshot file .*slow\.json \(not a MongoDB server\)\.\.\. \(6\d{3} ms so far\)\nReading snapshot file .*: done in 6\d{3} ms\n/,
  );
  assert.match(result.stderr, /\nApplying in one transaction:\n {2}applying\.\.\. \(6\d{3} ms so far\)\n/);
  assert.match(result.stderr, /\n {2}applying: done in \d+ ms\n/);
});

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
