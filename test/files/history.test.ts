import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { appendHistory, lockHistory, readHistory } from '../../src/files/history.js';
import type { HistoryRecord } from '../../src/report/record.js';
import { tempDir } from '../helpers/cli.js';

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

test('a new history file is private (0600); an existing one keeps its mode, and a symlink stays a link', async () => {
  const file = join(dir.path, 'private.json');
  await appendHistory(file, record('a'));
  assert.equal((statSync(file).mode & 0o777).toString(8), '600');
  chmodSync(file, 0o640);
  await appendHistory(file, record('b'));
  assert.equal((statSync(file).mode & 0o777).toString(8), '640');
  const link = join(dir.path, 'link-to-private.json');
  symlinkSync(file, link);
  await appendHistory(link, record('c'));
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.deepEqual(
    JSON.parse(readFileSync(file, 'utf8')).map((r: HistoryRecord) => r.id),
    ['a', 'b', 'c'],
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
