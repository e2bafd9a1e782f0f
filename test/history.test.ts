import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { appendHistory, lockHistory, readHistory } from '../src/history.js';
import type { HistoryRecord } from '../src/record.js';
import { tempDir } from './helpers/cli.js';

const dir = tempDir();
after(() => dir.remove());

const record = (id: string) => ({ id, status: 'completed' }) as HistoryRecord;

test('appending creates the file, then adds records in order, leaving no temp file', async () => {
  const file = join(dir.path, 'h.json');
  await appendHistory(file, record('a'));
  await appendHistory(file, record('b'));
  assert.deepEqual(
    JSON.parse(readFileSync(file, 'utf8')).map((r: HistoryRecord) => r.id),
    ['a', 'b'],
  );
  assert.deepEqual(
    readdirSync(dir.path).filter((name) => name.includes('h.json')),
    ['h.json'],
  );
});

test('a file that is not a JSON array is never rewritten', async () => {
  const file = join(dir.path, 'object.json');
  writeFileSync(file, '{"a":1}');
  await assert.rejects(appendHistory(file, record('x')), /is not a JSON array/);
  assert.equal(readFileSync(file, 'utf8'), '{"a":1}');
  writeFileSync(file, '[1,');
  await assert.rejects(readHistory(file), /is not a JSON array/);
});

test('a failed write leaves the old file whole (the rename never happens)', async () => {
  const file = join(dir.path, 'in-a-folder', 'h.json');
  await assert.rejects(appendHistory(file, record('x')), /Cannot write .*h\.json/);
  assert.equal(existsSync(file), false);
});

test('the lock is exclusive, names its holder, and is gone after release', async () => {
  const file = join(dir.path, 'locked.json');
  const lock = await lockHistory(file);
  await assert.rejects(
    lockHistory(file),
    /Another migration is running \(lock .*locked\.json\.lock: pid \d+ on .* since /,
  );
  await lock.release();
  assert.equal(existsSync(`${file}.lock`), false);
  const again = await lockHistory(file);
  await again.release();
});
