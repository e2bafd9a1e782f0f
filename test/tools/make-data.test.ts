import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { PROJECT_ROOT } from '../../src/cli/options.js';
import { runCli, shellWords, spawnNodeAsync, tempDir } from '../helpers/cli.js';
import { withDatabase } from '../helpers/mongo-server.js';
import { startWirePeer } from '../wire-peer/index.js';

const TOOL = join(PROJECT_ROOT, 'dist', 'tools', 'make-data.js');
const dir = tempDir();
const peer = await startWirePeer();
after(async () => {
  dir.remove();
  await peer.close();
});

/** The printed rehearsal command, as an operator pastes it (its words hold no spaces or quotes here). */
function rehearse(stdout: string): string[] {
  const line = stdout
    .split('\n')
    .find((text) => text.startsWith('Rehearse: node scripts/migrateCustomerData.js '));
  assert.ok(line, stdout);
  return shellWords(line).slice(3);
}

test('npm run make-data writes the bench data set as a snapshot, and prints the preview that rehearses on it', async () => {
  const file = join(dir.path, 'rehearsal.json');
  const made = await spawnNodeAsync(TOOL, ['--jobs', '500', '--snapshot', file]);
  assert.equal(made.code, 0, made.stderr);
  assert.match(
    made.stdout,
    /^Wrote snapshot file .*rehearsal\.json \(not a MongoDB server\): \d+ users, 500 \+ 100 jobs, 500 \+ 50 invoices\n/,
  );
  const preview = await runCli(rehearse(made.stdout));
  assert.equal(preview.code, 0, preview.stderr);
  assert.match(preview.stdout, /jobs\s+byPuid\s+500\n/);
  const bytes = readFileSync(file);
  const again = await spawnNodeAsync(TOOL, ['--jobs', '10', '--snapshot', file]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /rehearsal\.json exists; give a new file name/);
  assert.deepEqual(readFileSync(file), bytes);
  assert.equal(existsSync(join(dir.path, 'rehearsal.history.json')), false, 'a preview writes no history');
});

test('make-data loads a server through the driver, indexed, and refuses one that holds data unless --drop', async () => {
  const uri = withDatabase(peer.uri(), 'agm_make_data');
  const made = await spawnNodeAsync(TOOL, ['--jobs', '300', '--uri', uri]);
  assert.equal(made.code, 0, made.stderr);
  const preview = await runCli(rehearse(made.stdout));
  assert.equal(preview.code, 0, preview.stderr);
  const client = await MongoClient.connect(uri);
  try {
    const jobs = client.db('agm_make_data').collection('jobs');
    assert.equal(await jobs.countDocuments(), 400);
    const indexes = (await jobs.listIndexes().toArray()).map((index) => Object.keys(index.key)[0]);
    assert.deepEqual(indexes.sort(), ['_id', 'byPuid', 'client', 'pilot']);
    const refused = await spawnNodeAsync(TOOL, ['--jobs', '10', '--uri', uri]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /already holds users; nothing was loaded/);
    assert.equal(await jobs.countDocuments(), 400);
    const replaced = await spawnNodeAsync(TOOL, ['--jobs', '10', '--uri', uri, '--drop']);
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.equal(await jobs.countDocuments(), 110);
  } finally {
    await client.close();
  }
});
