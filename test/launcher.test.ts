import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_HISTORY_FILE } from '../src/options.js';
import { serializeSnapshot } from '../src/store/snapshot.js';
import { LAUNCHER, spawnCli, tempDir } from './helpers/cli.js';
import { demoData } from './helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

test('the guide command runs as written through the launcher (preview: default history untouched)', () => {
  const file = join(dir.path, 'agmission.json');
  writeFileSync(file, serializeSnapshot(demoData()));
  const committed = readFileSync(DEFAULT_HISTORY_FILE);
  const result = spawnCli([
    '--preview',
    '--sources',
    'acme_aviation,regional_ag',
    '--destination',
    'consolidated_ag',
    '--snapshot',
    file,
  ]);
  assert.equal(result.code, 3, result.stderr);
  assert.match(
    result.stdout,
    /Execution would be BLOCKED:\n {2}- 2 username conflict\(s\); rename the accounts first, or re-run with --merge-conflicts/,
  );
  assert.deepEqual(readFileSync(DEFAULT_HISTORY_FILE), committed);
});

test('--output-file is relative to the current directory; exit codes reach the shell', () => {
  const file = join(dir.path, 'run.json');
  writeFileSync(file, serializeSnapshot(demoData()));
  const result = spawnCli(
    [
      '--sources',
      'acme_west',
      '--destination',
      'acme_corporate',
      '--snapshot',
      'run.json',
      '--output-file',
      'logs/h.json',
    ],
    { cwd: dir.path },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(readFileSync(join(dir.path, 'logs', 'h.json'), 'utf8'))[0].status, 'completed');
  const usage = spawnCli(['--sources', 'acme_west'], { cwd: dir.path });
  assert.equal(usage.code, 2);
});

test('without a build the launcher says how to build instead of crashing', () => {
  const bare = join(dir.path, 'bare');
  mkdirSync(join(bare, 'scripts'), { recursive: true });
  copyFileSync(LAUNCHER, join(bare, 'scripts', 'migrateCustomerData.js'));
  writeFileSync(join(bare, 'package.json'), '{"type":"module"}');
  const unbuilt = spawnSync(process.execPath, [join(bare, 'scripts', 'migrateCustomerData.js'), '--help'], {
    encoding: 'utf8',
  });
  assert.equal(unbuilt.status, 1);
  assert.match(
    unbuilt.stderr,
    /The migration tool is not built: run `npm install` \(or `npm run build`\) in /,
  );
});
