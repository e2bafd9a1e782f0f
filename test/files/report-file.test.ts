import assert from 'node:assert/strict';
import { existsSync, linkSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPORT_MARK } from '../../src/files/report-file.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { assertNoFile } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

const snapshot = join(dir.path, 'agmission.json');
writeFileSync(snapshot, serializeSnapshot(demoData()));
const history = join(dir.path, 'history.json');
const config = join(dir.path, 'map.json');
writeFileSync(config, '{}\n');

function preview(report: string, extra: string[] = []) {
  return runCli([
    '--preview',
    '--sources',
    'acme_west',
    '--destination',
    'acme_corporate',
    '--snapshot',
    snapshot,
    '--output-file',
    history,
    '--config',
    config,
    '--report',
    report,
    ...extra,
  ]);
}

/** Every file of the folder with its bytes (or absent): a refusal must leave all of them as they were. */
function folderState(): Map<string, Buffer> {
  return new Map(readdirSync(dir.path).map((name) => [name, readFileSync(join(dir.path, name))]));
}

async function refused(report: string, message: RegExp, extra: string[] = []) {
  const before = folderState();
  const result = await preview(report, extra);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, message);
  assert.equal(result.stdout, '', 'refused before anything runs');
  assert.deepEqual(folderState(), before, 'every file byte-identical, nothing created');
}

test('--report never replaces the snapshot, the history file, a lock or the --config file, even with --force', async () => {
  writeFileSync(history, '[]\n');
  for (const force of [[], ['--force']]) {
    await refused(
      snapshot,
      /^Error: --report .*agmission\.json is the snapshot file: the report would replace it; give another file/,
      force,
    );
    await refused(history, /is the history file: the report would replace it/, force);
    await refused(`${snapshot}.lock`, /is the snapshot's lock/, force);
    await refused(`${history}.lock`, /is the history file's lock/, force);
    await refused(config, /is the --config file/, force);
    const link = join(dir.path, `link-to-snapshot${force.length}.md`);
    symlinkSync(snapshot, link);
    await refused(link, /is the snapshot file/, force);
    const hardLink = join(dir.path, `hard-link${force.length}.md`);
    linkSync(snapshot, hardLink);
    await refused(hardLink, /is the snapshot file/, force);
  }
});

test('a history file that does not exist yet is not created by a report either', async () => {
  const fresh = join(dir.path, 'fresh-history.json');
  const before = folderState();
  const result = await runCli([
    '--preview',
    '--sources',
    'acme_west',
    '--destination',
    'acme_corporate',
    '--snapshot',
    snapshot,
    '--output-file',
    fresh,
    '--report',
    fresh,
  ]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /is the history file/);
  assertNoFile(fresh);
  assert.deepEqual(folderState(), before);
});

test('an existing file the tool did not write is refused unless --force; an earlier report is replaced', async () => {
  const notes = join(dir.path, 'notes.md');
  writeFileSync(notes, '# my notes\n');
  await refused(
    notes,
    /already exists and is not a report this tool wrote; give a new file name, or add --force to replace it/,
  );
  await refused(dir.path, /is not a regular file/, ['--force']);
  await refused(join(dir.path, 'missing', 'r.md'), /folder .*missing does not exist/);

  const forced = await preview(notes, ['--force']);
  assert.equal(forced.code, 0, forced.stderr);
  const written = readFileSync(notes, 'utf8');
  assert.match(written, /^# Customer data migration: acme_west into acme_corporate\n/);
  assert.ok(written.endsWith(`\n${REPORT_MARK}\n`), 'the report ends with the mark');

  writeFileSync(notes, written.replace('acme_west into', 'an OLD report of acme_west into'));
  const again = await preview(notes);
  assert.equal(again.code, 0, 'an earlier report is replaced without --force');
  assert.equal(
    readFileSync(notes, 'utf8').split('\n')[0],
    '# Customer data migration: acme_west into acme_corporate',
  );
  assert.deepEqual(
    readdirSync(dir.path).filter((name) => name.endsWith('.tmp')),
    [],
    'written through a temp file that is gone',
  );
  assert.equal(existsSync(`${notes}.lock`), false);
});

test('--force is only for --report', async () => {
  const result = await runCli([
    '--preview',
    '--sources',
    'acme_west',
    '--destination',
    'acme_corporate',
    '--snapshot',
    snapshot,
    '--force',
  ]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^Error: --force only lets --report replace an existing file/);
});
