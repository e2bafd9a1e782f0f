import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ExitCode, UsageError } from '../../src/shared/errors.js';
import { openReadOnlyStore, openStore } from '../../src/store/index.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { assertNoFile } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

/** The demo data with some collections left out and others emptied. */
function snapshotWithout(name: string, leftOut: string[], emptied: string[] = []): string {
  const data = demoData();
  for (const collection of leftOut) data.delete(collection);
  for (const collection of emptied) data.set(collection, []);
  const file = join(dir.path, name);
  writeFileSync(file, serializeSnapshot(data));
  return file;
}

const refusedFor = (file: string, message: string) => (error: unknown) => {
  assert.ok(error instanceof UsageError);
  assert.equal(error.message, message.replace('<file>', file));
  return true;
};

test('a store asked for collections refuses a snapshot missing one, naming each missing one', async () => {
  const file = snapshotWithout('no-jobs.json', ['jobs']);
  const one = 'Snapshot <file> has no "jobs" collection; export it too (an empty array is fine)';
  const requiredCollections = ['users', 'jobs', 'invoices'];
  await assert.rejects(
    openReadOnlyStore({ kind: 'snapshot', file }, { requiredCollections }),
    refusedFor(file, one),
  );
  await assert.rejects(openStore({ kind: 'snapshot', file }, { requiredCollections }), refusedFor(file, one));
  assertNoFile(`${file}.lock`);
  const two = snapshotWithout('no-jobs-no-invoices.json', ['jobs', 'invoices']);
  await assert.rejects(
    openReadOnlyStore({ kind: 'snapshot', file: two }, { requiredCollections }),
    refusedFor(
      two,
      'Snapshot <file> has no "jobs", "invoices" collections; export them too (an empty array is fine)',
    ),
  );
});

test('preview and execute refuse a snapshot missing a collection of the reference map (exit 2, nothing written)', async () => {
  const file = snapshotWithout('no-invoices.json', ['invoices']);
  const bytes = readFileSync(file);
  const history = join(dir.path, 'history.json');
  for (const mode of [['--preview'], []]) {
    const result = await runCli([
      ...mode,
      '--sources',
      'acme_west',
      '--destination',
      'acme_corporate',
      '--snapshot',
      file,
      '--output-file',
      history,
    ]);
    assert.equal(result.code, ExitCode.usage, result.stderr);
    assert.equal(
      result.stderr,
      `Error: Snapshot ${file} has no "invoices" collection; export it too (an empty array is fine)\n`,
    );
    assert.deepEqual(readFileSync(file), bytes);
    assertNoFile(history);
    assertNoFile(`${file}.lock`);
  }
});

test('a collection added by --config must be there too; an empty array is fine', async () => {
  const config = join(dir.path, 'map.json');
  writeFileSync(config, JSON.stringify({ customerRefs: { users: ['parent'], applications: ['customer'] } }));
  const args = ['--preview', '--sources', 'acme_west', '--destination', 'acme_corporate', '--config', config];
  const without = snapshotWithout('no-applications.json', []);
  const refused = await runCli([...args, '--snapshot', without]);
  assert.equal(refused.code, ExitCode.usage);
  assert.match(refused.stderr, /has no "applications" collection; export it too \(an empty array is fine\)/);
  const empty = snapshotWithout('empty-collections.json', [], ['applications', 'invoices']);
  const result = await runCli([...args, '--snapshot', empty]);
  assert.equal(result.code, ExitCode.ok, result.stderr);
});
