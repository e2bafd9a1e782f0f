import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { BSON, type Document, ObjectId } from 'mongodb';
import { ExitCode } from '../../src/shared/errors.js';
import { openReadOnlyStore, openStore } from '../../src/store/index.js';
import { collect } from '../../src/store/types.js';
import { assertNoFile, lastRecord } from '../helpers/assertions.js';
import { runCli, spawnCliAsync, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';
import { readDump, writeDump } from '../helpers/dump.js';
import { sharedTempDir, spawnCliUnprivileged } from '../helpers/unprivileged.js';

const dir = tempDir();
after(() => dir.remove());

const WEST = ['--sources', 'acme_west', '--destination', 'acme_corporate'];
let folders = 0;

function demoDump(
  options: { gzip?: boolean; change?: (data: Map<string, Document[]>) => void } = {},
): string {
  folders += 1;
  const data = demoData();
  options.change?.(data);
  return writeDump(join(dir.path, `dump-${folders}`, 'agmission'), data, options);
}

/** Every file of a folder and its bytes: equal maps mean nothing was written. */
function filesOf(folder: string): Map<string, Buffer> {
  return new Map(readdirSync(folder).map((name) => [name, readFileSync(join(folder, name))]));
}

async function runOn(folder: string, args: string[]) {
  const history = join(dir.path, `history-${folders}-${Math.random().toString(16).slice(2)}.json`);
  const result = await runCli([...args, '--dump', folder, '--output-file', history]);
  return { ...result, history };
}

test('the folder mongodump --out wrote is taken when it holds one database; several are refused, naming them', async () => {
  const database = demoDump();
  const parent = join(database, '..');
  const preview = await runCli(['--preview', ...WEST, '--dump', parent]);
  assert.equal(preview.code, ExitCode.ok, preview.stderr);
  assert.match(preview.stdout, new RegExp(`Target: mongodump folder ${database} \\(not a MongoDB server\\)`));
  assert.match(
    preview.stdout,
    /On a dump, the fingerprint is the one a preview of the same data on the server gives/,
  );
  writeDump(join(parent, 'other'), demoData());
  const refused = await runCli(['--preview', ...WEST, '--dump', parent]);
  assert.equal(refused.code, ExitCode.usage);
  assert.equal(
    refused.stderr,
    `Error: ${parent} holds the dumps of 2 databases (agmission, other); give the one to use, e.g. --dump ${database}\n`,
  );
});

test('a folder that is not a dump, or a missing one, is refused (exit 2), and --dump goes with no other target', async () => {
  const empty = join(dir.path, 'not-a-dump');
  mkdirSync(empty);
  writeFileSync(join(empty, 'notes.txt'), 'hello');
  const result = await runCli(['--preview', ...WEST, '--dump', empty]);
  assert.equal(result.code, ExitCode.usage);
  assert.match(
    result.stderr,
    new RegExp(`^Error: ${empty} is not a mongodump folder: it holds no <collection>.bson`),
  );
  const missing = await runCli(['--preview', ...WEST, '--dump', join(dir.path, 'nowhere')]);
  assert.equal(missing.code, ExitCode.usage);
  assert.match(missing.stderr, /Cannot read dump folder .*nowhere: ENOENT; check the --dump path/);
  const both = await runCli(['--preview', ...WEST, '--dump', empty, '--snapshot', 'x.json']);
  assert.equal(both.code, ExitCode.usage);
  assert.match(both.stderr, /cannot be used with/);
  const uri = await runCli(['--preview', ...WEST, '--dump', empty, '--uri', 'mongodb://h/db']);
  assert.equal(uri.code, ExitCode.usage);
  assert.match(uri.stderr, /cannot be used with/);
});

test('a dump missing a mapped collection is refused by preview and execute, nothing written', async () => {
  const folder = demoDump({ change: (data) => data.delete('invoices') });
  const before = filesOf(folder);
  for (const mode of [['--preview'], []]) {
    const result = await runOn(folder, [...mode, ...WEST]);
    assert.equal(result.code, ExitCode.usage, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`Dump ${folder} has no "invoices" collection \\(invoices.bson\\)`),
    );
    assertNoFile(result.history);
  }
  assert.deepEqual(filesOf(folder), before);
  assertNoFile(`${folder}.lock`);
});

test('a truncated .bson or a .gz that does not inflate: exit 2 naming the file and offset, nothing written', async () => {
  const cut = demoDump();
  const jobs = join(cut, 'jobs.bson');
  const bytes = readFileSync(jobs);
  writeFileSync(jobs, bytes.subarray(0, bytes.length - 10));
  const cutBefore = filesOf(cut);
  for (const mode of [['--preview'], []]) {
    const result = await runOn(cut, [...mode, ...WEST]);
    assert.equal(result.code, ExitCode.usage, result.stderr);
    assert.match(result.stderr, new RegExp(`Dump file ${jobs} is damaged at byte \\d+: .*cut short`));
    assertNoFile(result.history);
  }
  assert.deepEqual(filesOf(cut), cutBefore);

  const zipped = demoDump({ gzip: true });
  writeFileSync(join(zipped, 'invoices.bson.gz'), 'not gzip at all');
  const zippedBefore = filesOf(zipped);
  for (const mode of [['--preview'], []]) {
    const result = await runOn(zipped, [...mode, ...WEST]);
    assert.equal(result.code, ExitCode.usage, result.stderr);
    assert.match(result.stderr, /Dump file .*invoices\.bson\.gz is not a gzip file that inflates/);
    assertNoFile(result.history);
  }
  assert.deepEqual(filesOf(zipped), zippedBefore);
});

test('execute on a folder it cannot write is refused before anything runs; the preview says so and still passes', () => {
  const shared = sharedTempDir();
  try {
    const folder = writeDump(join(shared.path, 'agmission'), demoData());
    const trail = join(shared.path, 'trail');
    mkdirSync(trail);
    chmodSync(trail, 0o777);
    const history = join(trail, 'history.json');
    // Root owns the dump: the unprivileged run may read it, not write it.
    const before = filesOf(folder);
    const preview = spawnCliUnprivileged(
      ['--preview', ...WEST, '--dump', folder, '--output-file', history],
      shared.path,
    );
    assert.equal(preview.status, ExitCode.ok, preview.stderr);
    assert.match(preview.stdout, new RegExp(`Before executing:\\n  - Dump ${folder} cannot be changed: `));
    const result = spawnCliUnprivileged([...WEST, '--dump', folder, '--output-file', history], shared.path);
    assert.equal(result.status, ExitCode.usage, result.stdout);
    assert.match(result.stderr, new RegExp(`Dump ${folder} cannot be changed: .*not a writable folder`));
    assertNoFile(history);
    assert.deepEqual(filesOf(folder), before);
  } finally {
    shared.remove();
  }
});

test('execute rewrites only the changed collections (plain BSON, untouched documents byte for byte), adds the journal as a collection file; verify, rollback and history work on it', async () => {
  const folder = demoDump();
  const before = filesOf(folder);
  const run = await runOn(folder, WEST);
  assert.equal(run.code, ExitCode.ok, run.stderr);
  assert.match(run.stdout, new RegExp(`--dump ${folder}`), 'printed commands repeat --dump');
  const after = filesOf(folder);
  assert.deepEqual(
    [...after.keys()].sort(),
    [...before.keys(), 'customer_migrations.bson', 'customer_migrations.metadata.json'].sort(),
  );
  // The metadata files of existing collections are as they were.
  for (const name of ['users.metadata.json', 'jobs.metadata.json', 'invoices.metadata.json']) {
    assert.deepEqual(after.get(name), before.get(name));
  }
  const metadata = BSON.EJSON.parse((after.get('customer_migrations.metadata.json') as Buffer).toString());
  assert.deepEqual(
    metadata.indexes.map((index: Document) => index.name),
    ['_id_'],
  );
  // A job of another customer keeps its exact bytes; the moved ones carry the destination.
  const oldJobs = before.get('jobs.bson') as Buffer;
  const data = await readDump(folder);
  const west = new ObjectId(IDS.acme_west);
  assert.equal((data.get('jobs') ?? []).filter((job) => west.equals(job.byPuid)).length, 0);
  const first = oldJobs.subarray(0, oldJobs.readInt32LE(0));
  const firstDocument = BSON.deserialize(first);
  if (!west.equals(firstDocument.byPuid)) assert.ok((after.get('jobs.bson') as Buffer).includes(first));

  const migration = lastRecord(run.history);
  const journal = data.get('customer_migrations') ?? [];
  assert.ok(journal.some((entry) => entry._id === migration.id));

  const verify = await runCli(['verify', migration.id, '--dump', folder, '--output-file', run.history]);
  assert.equal(verify.code, ExitCode.ok, verify.stdout);
  const history = await runCli(['history', '--dump', folder, '--output-file', run.history]);
  assert.equal(history.code, ExitCode.ok, history.stderr);
  assert.match(history.stdout, new RegExp(migration.id));
  const rollback = await runCli(['rollback', migration.id, '--dump', folder, '--output-file', run.history]);
  assert.equal(rollback.code, ExitCode.ok, rollback.stderr);
  const restored = await readDump(folder);
  for (const name of ['users', 'jobs', 'invoices']) {
    assert.equal(
      BSON.EJSON.stringify(restored.get(name), { relaxed: false }),
      BSON.EJSON.stringify((await readDump(folderCopy(before))).get(name), { relaxed: false }),
      name,
    );
  }
  assertNoFile(`${folder}.lock`);
  assert.deepEqual(
    readdirSync(folder).filter((name) => name.startsWith('.')),
    [],
    'no temp file or commit record is left',
  );
});

/** The files of `filesOf` written to a new folder. */
function folderCopy(files: Map<string, Buffer>): string {
  folders += 1;
  const copy = join(dir.path, `copy-${folders}`);
  mkdirSync(copy);
  for (const [name, bytes] of files) writeFileSync(join(copy, name), bytes);
  return copy;
}

test('a gzip dump stays gzip: every file it writes inflates, and the history default sits beside the folder', async () => {
  const folder = demoDump({ gzip: true });
  const result = await runCli([...WEST, '--dump', folder]);
  assert.equal(result.code, ExitCode.ok, result.stderr);
  const names = readdirSync(folder).sort();
  assert.ok(names.includes('customer_migrations.bson.gz'));
  assert.ok(names.includes('customer_migrations.metadata.json.gz'));
  for (const name of names) gunzipSync(readFileSync(join(folder, name)));
  assert.equal(lastRecord(`${folder}.history.json`).status, 'completed');
});

test('the indexes of the metadata files reach the checks (inspect)', async () => {
  const folder = demoDump();
  const metadata = join(folder, 'users.metadata.json');
  writeFileSync(
    metadata,
    JSON.stringify({
      indexes: [
        { v: { $numberInt: '2' }, key: { _id: { $numberInt: '1' } }, name: '_id_' },
        {
          v: 2,
          key: { username: 1 },
          name: 'username_1',
          unique: true,
          collation: { locale: 'en', strength: 2 },
        },
      ],
    }),
  );
  const store = await openReadOnlyStore({ kind: 'dump', dir: folder });
  try {
    const facts = await store.inspect(['users', 'jobs']);
    assert.deepEqual(facts.indexes?.users, [
      { name: '_id_', key: { _id: 1 } },
      { name: 'username_1', key: { username: 1 }, unique: true, collation: { locale: 'en', strength: 2 } },
    ]);
    assert.deepEqual(facts.indexes?.jobs, [{ name: '_id_', key: { _id: 1 } }]);
  } finally {
    await store.close();
  }
});

test('a commit record left by a run stopped between its renames is finished by the next run; temp files without one are removed', async () => {
  const folder = demoDump();
  const target = { kind: 'dump' as const, dir: folder };
  // What a commit leaves when stopped after its record: the new file beside the old, and the record.
  const newJobs = [{ _id: new ObjectId(), name: 'only job' }];
  const temp = join(folder, `.jobs.bson.${process.pid}.0123abcd.tmp`);
  writeFileSync(temp, BSON.serialize(newJobs[0] as Document));
  writeFileSync(
    join(folder, '.agm-dump-commit.json'),
    JSON.stringify({ renames: [{ temp, target: join(folder, 'jobs.bson') }] }),
  );
  // A reader sees the committed state without finishing it.
  const reader = await openReadOnlyStore(target);
  assert.deepEqual(
    (await collect(reader.find('jobs', {}))).map((job) => job.name),
    ['only job'],
  );
  await reader.close();
  assert.ok(existsSync(temp));
  const store = await openStore(target);
  await store.close();
  assertNoFile(temp);
  assertNoFile(join(folder, '.agm-dump-commit.json'));
  assert.deepEqual(
    (await readDump(folder)).get('jobs')?.map((job) => job.name),
    ['only job'],
  );

  const leftover = join(folder, `.invoices.bson.${process.pid}.89abcdef.tmp`);
  writeFileSync(leftover, 'half a file');
  const invoices = readFileSync(join(folder, 'invoices.bson'));
  const again = await openStore(target);
  await again.close();
  assertNoFile(leftover);
  assert.deepEqual(readFileSync(join(folder, 'invoices.bson')), invoices);
});

test('a run killed while writing the new files leaves every original file intact, and a later run works', async () => {
  // Enough unrelated jobs that writing the new jobs file takes a while.
  const folder = demoDump({
    change: (data) => {
      const other = new ObjectId(IDS.old_farms);
      const jobs = data.get('jobs') ?? [];
      for (let i = 0; i < 60_000; i += 1)
        jobs.push({ _id: new ObjectId(), byPuid: other, name: `job ${i}`, acres: i });
    },
  });
  const before = filesOf(folder);
  const history = join(dir.path, 'killed-history.json');
  const killed = await spawnCliAsync([...WEST, '--dump', folder, '--output-file', history], {
    env: { DEBUG: 'agm:dump' },
    interrupt: { when: /writing the new jobs/, signal: 'SIGKILL' },
    timeoutMs: 120_000,
  });
  assert.notEqual(killed.code, 0, killed.stderr);
  assert.doesNotMatch(killed.stderr, /commit record written/);
  const left = filesOf(folder);
  for (const [name, bytes] of before) assert.deepEqual(left.get(name), bytes, `${name} is as it was`);
  assert.equal(left.has('customer_migrations.bson'), false);
  // SIGKILL leaves the lock: the operator removes it once no run is left (as the refusal says).
  rmSync(`${folder}.lock`);
  const later = await runCli([
    ...WEST,
    '--dump',
    folder,
    '--output-file',
    join(dir.path, 'later-history.json'),
  ]);
  assert.equal(later.code, ExitCode.ok, later.stderr);
  assert.deepEqual(
    readdirSync(folder).filter((name) => name.startsWith('.')),
    [],
    'the killed run’s temp files are gone',
  );
});
