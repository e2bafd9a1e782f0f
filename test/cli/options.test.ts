import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULT_HISTORY_FILE, PROJECT_ROOT } from '../../src/cli/options.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { assertNoFile } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

/** A slip of the keyboard must never run something else than what was meant: exit 2, nothing touched. */
describe('options a slip of the keyboard gets wrong', () => {
  const dir = tempDir();
  after(() => dir.remove());
  const snapshot = join(dir.path, 'agmission.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const bytes = readFileSync(snapshot);
  const committed = readFileSync(DEFAULT_HISTORY_FILE);
  const history = join(dir.path, 'history.json');
  const migrate = ['--sources', 'acme_west', '--destination', 'acme_corporate'];

  async function refused(args: string[], message: RegExp, env: NodeJS.ProcessEnv = {}) {
    const result = await runCli(args, { env });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
    assert.equal(result.stdout, '');
    assert.deepEqual(readFileSync(snapshot), bytes, 'the data file is unchanged');
    assertNoFile(history);
    assert.deepEqual(readFileSync(DEFAULT_HISTORY_FILE), committed, 'the production history is unchanged');
    return result;
  }

  test('an empty --snapshot= (an unset $SNAP) is refused, never a fall-back to MONGODB_URI', async () => {
    const started = Date.now();
    await refused(
      [...migrate, '--snapshot=', '--output-file', history],
      /option '--snapshot <file>' argument '' is invalid\. it is empty; give a value to --snapshot/,
      { MONGODB_URI: 'mongodb://127.0.0.1:9/production' },
    );
    assert.ok(Date.now() - started < 2_000, 'no connection was attempted');
    for (const option of ['--output-file', '--uri', '--config', '--destination', '--expect-plan']) {
      await refused(
        [...migrate, '--snapshot', snapshot, `${option}=`],
        new RegExp(`${option} <[^>]*>' argument '' is invalid`),
      );
    }
  });

  test('a value that starts with "-" is a forgotten value: --output-file --preview does not execute', async () => {
    await refused(
      [...migrate, '--snapshot', snapshot, '--output-file', '--preview'],
      /option '--output-file <path>' argument '--preview' is invalid\. it looks like an option, so the value of --output-file is missing \(a path starting with "-" can be written \.\/--preview\)/,
    );
  });

  test('a single-value option given twice is refused, naming it; --sources too (one list)', async () => {
    await refused(
      [
        '--sources',
        'acme_west',
        '--sources',
        'acme_east',
        '--destination',
        'acme_corporate',
        '--snapshot',
        snapshot,
      ],
      /--sources is given twice; give it once/,
    );
    await refused(
      [
        '--sources',
        'acme_west',
        '--destination',
        'acme_corporate',
        '--destination',
        'valley_sprayers',
        '--snapshot',
        snapshot,
      ],
      /--destination is given twice; give it once/,
    );
    await refused([...migrate, '--snapshot', snapshot, '--snapshot', snapshot], /--snapshot is given twice/);
  });

  test('an unknown option is reported as unknown, with a suggestion, before any missing required option', async () => {
    const result = await refused(
      ['--source', 'acme_west'],
      /unknown option '--source'\n\(Did you mean --sources\?\)/,
    );
    assert.doesNotMatch(result.stderr, /required option/);
    await refused(['--sources', 'acme_west'], /required option '--destination <ref>' not specified/);
  });

  test('--report needs --preview; --expect-plan cannot go with it', async () => {
    await refused(
      [...migrate, '--snapshot', snapshot, '--report', join(dir.path, 'r.md')],
      /--report writes a preview as Markdown: add --preview/,
    );
    await refused(
      ['--preview', ...migrate, '--snapshot', snapshot, '--expect-plan', '0123456789abcdef'],
      /cannot be used with option '--preview'/,
    );
  });

  test('--version prints the package version and exits 0', async () => {
    const result = await runCli(['--version']);
    assert.equal(result.code, 0);
    assert.equal(
      result.stdout.trim(),
      JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).version,
    );
  });

  test('--help names the commands, says --sources is one list, and lists exit codes 0 to 6', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['rollback', 'verify', 'history'])
      assert.match(result.stdout, new RegExp(`\\n  ${command} `));
    assert.match(result.stdout, /--sources takes one comma-separated list \(given twice, it is refused\)/);
    assert.match(result.stdout, /Exit codes:\n(\s+[0-6] .*\n(\s{5}.*\n)?){7}/);
    const rollback = await runCli(['rollback', '--help']);
    assert.match(rollback.stdout, /Usage: migrateCustomerData\.js rollback \[options\] <migrationId>/);
  });

  test('a rehearsal on a snapshot keeps its own trail next to the snapshot; --output-file still wins', async () => {
    const rehearsal = join(dir.path, 'rehearsal.json');
    writeFileSync(rehearsal, serializeSnapshot(demoData()));
    const result = await runCli([...migrate, '--snapshot', rehearsal]);
    assert.equal(result.code, 0, result.stderr);
    const trail = join(dir.path, 'rehearsal.history.json');
    assert.equal(JSON.parse(readFileSync(trail, 'utf8'))[0].status, 'completed');
    assert.deepEqual(readFileSync(DEFAULT_HISTORY_FILE), committed, 'the production history is unchanged');
    const history = await runCli(['history', '--snapshot', rehearsal]);
    assert.match(history.stdout, /completed\s+acme_west -> acme_corporate/);
    assert.equal(existsSync(join(dir.path, 'elsewhere.json')), false);
  });
});
