import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_HISTORY_FILE, PROJECT_ROOT } from '../src/cli/options.js';

test('npm run demo previews, migrates scenario 2 in a temp folder, and leaves the project untouched', () => {
  const committed = readFileSync(DEFAULT_HISTORY_FILE);
  const example = readFileSync(join(PROJECT_ROOT, 'examples', 'agmission-demo.json'));
  const result = spawnSync(process.execPath, [join(PROJECT_ROOT, 'scripts', 'demo.js')], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const folder = /Demo files are in (\S+)/.exec(result.stdout)?.[1];
  try {
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /== Step 1: preview \(writes nothing\) ==[\s\S]*Execution would proceed\./);
    assert.match(result.stdout, /Migration completed in \d+ ms: 28 document\(s\) modified/);
    assert.match(result.stdout, /== Step 3: verify it with the guide's checks ==[\s\S]*All checks passed\./);
    assert.ok(folder, 'the demo says where its files are');
    const history = JSON.parse(readFileSync(join(folder, 'migration_history.json'), 'utf8'));
    assert.equal(history.length, 1);
    assert.equal(history[0].status, 'completed');
    assert.deepEqual(readFileSync(DEFAULT_HISTORY_FILE), committed);
    assert.deepEqual(readFileSync(join(PROJECT_ROOT, 'examples', 'agmission-demo.json')), example);
  } finally {
    if (folder) rmSync(folder, { recursive: true, force: true });
  }
});
