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
import { BSON } from 'mongodb';
import { appendHistory, checkHistoryFile, lockHistory, readHistory } from '../../src/files/history.js';
import type { HistoryRecord } from '../../src/report/record.js';
import { openStore } from '../../src/store/index.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import type { Store, StoreTarget } from '../../src/store/types.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';

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
  await assert.rejects(readHistory(file), /is not valid JSON \(truncated or damaged: /);
});

test('a truncated history file is called not valid JSON, and left as it was, by every command', async () => {
  const file = join(dir.path, 'truncated.json');
  const text = '[\n  {\n    "id": "1",\n    "status": "compl';
  writeFileSync(file, text);
  for (const args of [
    ['history'],
    ['verify'],
    ['--sources', 'a', '--destination', 'b', '--uri', 'mongodb://127.0.0.1:9/x'],
  ]) {
    const result = await runCli([...args, '--output-file', file]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /^Error: History file .*truncated\.json is not valid JSON \(truncated or damaged: [^)]+\); restore it from a backup, or move it aside or choose another --output-file \(it was not changed\)\n$/,
    );
    assert.equal(readFileSync(file, 'utf8'), text);
  }
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

test('the last redaction: a record whose message quotes a connection string is written with its password masked', async () => {
  const file = join(dir.path, 'redacted.json');
  await appendHistory(file, {
    ...record('r'),
    error: { message: 'connect failed: mongodb://u:pw@h:27017/agmission?authSource=admin', exitCode: 1 },
    nested: [{ deeper: 'mongodb+srv://ops:S3cret%40x@cluster.example.net' }],
  });
  const bytes = readFileSync(file, 'utf8');
  assert.doesNotMatch(bytes, /:pw@|S3cret/);
  assert.match(bytes, /mongodb:\/\/u:\*\*\*\*@h:27017\/agmission\?authSource=admin/);
  assert.match(bytes, /mongodb\+srv:\/\/ops:\*\*\*\*@cluster\.example\.net/);
});

test('a failure whose message holds a connection string: the history file bytes never hold its password', async () => {
  const snapshot = join(dir.path, 'failing.snapshot.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const history = join(dir.path, 'failing.history.json');
  const failing = async (target: StoreTarget): Promise<Store> => {
    const store = await openStore(target);
    const wrapped: Store = Object.create(store);
    wrapped.transaction = () => Promise.reject(new Error('lost mongodb://u:pw@h/agmission while applying'));
    return wrapped;
  };
  const result = await runCli(
    [
      '--sources',
      'acme_west',
      '--destination',
      'acme_corporate',
      '--snapshot',
      snapshot,
      '--output-file',
      history,
    ],
    { openStore: failing },
  );
  assert.equal(result.code, 1, result.stderr);
  const bytes = readFileSync(history, 'utf8');
  assert.equal(JSON.parse(bytes).at(-1).status, 'failed');
  assert.match(bytes, /lost mongodb:\/\/u:\*\*\*\*@h\/agmission while applying/);
  assert.doesNotMatch(bytes, /:pw@/);
});

test('before-images in the history file are canonical Extended JSON: a Double 10.0, an Int32, an Int64 and a Date keep their types', async () => {
  const data = demoData();
  const typed = {
    rate: new BSON.Double(10),
    count: new BSON.Int32(7),
    big: BSON.Long.fromString('9007199254740993'),
    since: new Date('2021-03-04T05:06:07.089Z'),
    price: BSON.Decimal128.fromString('1.10'),
  };
  const source = (data.get('users') ?? []).find((user) => String(user._id) === IDS.acme_west);
  assert.ok(source);
  Object.assign(source, typed);
  const snapshot = join(dir.path, 'typed.snapshot.json');
  writeFileSync(snapshot, serializeSnapshot(data));
  const history = join(dir.path, 'typed.history.json');
  const result = await runCli([
    '--sources',
    'acme_west',
    '--destination',
    'acme_corporate',
    '--convert-to-admin',
    '--snapshot',
    snapshot,
    '--output-file',
    history,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const [converted] = JSON.parse(readFileSync(history, 'utf8')).at(-1).convertedCustomers;
  const { rate, count, big, since, price } = converted.before;
  assert.deepEqual(
    { rate, count, big, since, price },
    {
      rate: { $numberDouble: '10.0' },
      count: { $numberInt: '7' },
      big: { $numberLong: '9007199254740993' },
      since: { $date: { $numberLong: '1614834367089' } },
      price: { $numberDecimal: '1.10' },
    },
  );
  assert.deepEqual(converted.before._id, { $oid: IDS.acme_west });
});

test('a history path that is a symlink loop is refused as unresolvable, and left as it was', async () => {
  const a = join(dir.path, 'loop-a.json');
  const b = join(dir.path, 'loop-b.json');
  symlinkSync(b, a);
  symlinkSync(a, b);
  await assert.rejects(
    checkHistoryFile(a),
    new RegExp(`^UsageError: History file ${a} cannot be resolved \\(.+\\); choose another --output-file$`),
  );
  assert.ok(lstatSync(a).isSymbolicLink() && lstatSync(b).isSymbolicLink());
});
