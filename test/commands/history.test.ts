import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { readHistoryFile } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

test('history prints the file as a table, filters by status, says who rolled back what, and has --json', async () => {
  const snapshot = join(dir.path, 'agmission.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const history = join(dir.path, 'h.json');
  const place = ['--snapshot', snapshot, '--output-file', history];
  assert.equal(
    (await runCli(['--sources', 'acme_west', '--destination', 'acme_corporate', ...place])).code,
    0,
  );
  assert.equal(
    (await runCli(['--sources', 'acme_aviation', '--destination', 'consolidated_ag', ...place])).code,
    3,
  );
  const [migration] = readHistoryFile(history);
  assert.equal((await runCli(['rollback', migration?.id as string, ...place])).code, 0);
  const [, failed, rollback] = readHistoryFile(history);
  const bytes = readFileSync(history);

  const table = await runCli(['history', '--output-file', history]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(
    lines[0] ?? '',
    /^id\s+time\s+status\s+sources -> destination\s+documents\s+rolled back by \/ reverses \/ note$/,
  );
  assert.match(
    lines[1] ?? '',
    new RegExp(
      `^${migration?.id}\\s+\\S+Z\\s+completed\\s+acme_west -> acme_corporate\\s+11\\s+${rollback?.id}$`,
    ),
  );
  assert.match(
    lines[2] ?? '',
    new RegExp(`^${failed?.id}\\s+\\S+\\s+failed\\s+acme_aviation -> consolidated_ag\\s+0$`),
  );
  assert.match(
    lines[3] ?? '',
    new RegExp(
      `^${rollback?.id}\\s+\\S+\\s+rolled_back\\s+acme_west -> acme_corporate\\s+11\\s+reverses ${migration?.id}$`,
    ),
  );
  assert.equal(lines[4], `3 record(s) in ${history}`);

  const failedTable = await runCli(['history', '--status', 'failed', '--output-file', history]);
  assert.equal(
    failedTable.stdout.trim().split('\n').at(-1),
    `1 failed record(s) shown, of 3 in ${history}`,
    'counts what it shows, and says of how many',
  );
  const onlyFailed = await runCli(['history', '--status', 'failed', '--output-file', history, '--json']);
  const envelope = JSON.parse(onlyFailed.stdout);
  assert.deepEqual(
    { ...envelope, records: undefined },
    {
      mode: 'history',
      historyFile: history,
      filter: { status: 'failed' },
      total: 3,
      shown: 1,
      records: undefined,
    },
    'the same envelope as the other commands: mode first',
  );
  assert.deepEqual(
    envelope.records.map((row: { id: string; status: string }) => [row.id, row.status]),
    [[failed?.id, 'failed']],
  );
  const none = await runCli(['history', '--status', 'unknown', '--output-file', history]);
  assert.equal(none.stdout, `No unknown records in ${history} (3 record(s) in all)\n`);
  assert.deepEqual(readFileSync(history), bytes, 'history only reads');
});

test('history shows a noop run (nothing to do) with the migration that had moved its sources, and filters on it', async () => {
  const snapshot = join(dir.path, 'noop.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const history = join(dir.path, 'noop-history.json');
  const place = ['--snapshot', snapshot, '--output-file', history];
  const west = ['--sources', 'acme_west', '--destination', 'acme_corporate', ...place];
  assert.equal((await runCli(west)).code, 0);
  assert.equal((await runCli(west)).code, 0);
  const [migration, noop] = readHistoryFile(history);
  assert.equal(noop?.status, 'noop');
  const table = await runCli(['history', '--output-file', history]);
  assert.match(
    table.stdout.split('\n')[2] ?? '',
    new RegExp(
      `^${noop?.id}\\s+\\S+Z\\s+noop\\s+acme_west -> acme_corporate\\s+0\\s+nothing to do: moved by ${migration?.id}$`,
    ),
  );
  const only = await runCli(['history', '--status', 'noop', '--output-file', history, '--json']);
  assert.equal(only.code, 0, only.stderr);
  assert.deepEqual(
    JSON.parse(only.stdout).records.map((row: { id: string; movedBy: string[] }) => [row.id, row.movedBy]),
    [[noop?.id, [migration?.id]]],
  );
});

test('history on a file that is not a JSON array is an input error', async () => {
  const bad = join(dir.path, 'bad.json');
  writeFileSync(bad, '{}');
  const result = await runCli(['history', '--output-file', bad]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /is not a JSON array/);
});

test('a rollback that fails before reaching the journal still names its sources and destination', async () => {
  const snapshot = join(dir.path, 'for-rollback.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const history = join(dir.path, 'rollback-failed.json');
  const migrated = await runCli([
    '--sources',
    'acme_west',
    '--destination',
    'acme_corporate',
    '--snapshot',
    snapshot,
    '--output-file',
    history,
  ]);
  assert.equal(migrated.code, 0, migrated.stderr);
  const [migration] = readHistoryFile(history);
  const unreachable = 'mongodb://127.0.0.1:9/agmission?serverSelectionTimeoutMS=300';
  const rollback = await runCli([
    'rollback',
    migration?.id as string,
    '--uri',
    unreachable,
    '--output-file',
    history,
  ]);
  assert.equal(rollback.code, 1, rollback.stderr);
  const failed = readHistoryFile(history)[1];
  assert.equal(failed?.status, 'failed');
  assert.deepEqual(failed?.sources, migration?.sources);
  assert.deepEqual(failed?.destination, migration?.destination);
  const table = await runCli(['history', '--status', 'failed', '--output-file', history]);
  assert.match(
    table.stdout,
    new RegExp(
      `\\n${failed?.id}\\s+\\S+\\s+failed\\s+acme_west -> acme_corporate\\s+0\\s+reverses ${migration?.id}\\n`,
    ),
  );
});
