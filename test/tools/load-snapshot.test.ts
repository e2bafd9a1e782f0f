import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { PROJECT_ROOT } from '../../src/cli/options.js';
import { runCli, spawnNodeAsync } from '../helpers/cli.js';
import { withDatabase } from '../helpers/mongo-server.js';
import { startWirePeer } from '../wire-peer/index.js';

const TOOL = join(PROJECT_ROOT, 'dist', 'tools', 'load-snapshot.js');
const peer = await startWirePeer();
after(() => peer.close());

test('npm run load-snapshot puts the demo data into a server, where the guide then runs; a loaded database is not overwritten', async () => {
  const uri = withDatabase(peer.uri(), 'agm_load_demo');
  const loaded = await spawnNodeAsync(TOOL, ['--uri', uri]);
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.match(
    loaded.stdout,
    /^Loaded .*examples\/agmission-demo\.json into MongoDB \S+\/agm_load_demo: users: 39, jobs: \d+, invoices: \d+; indexed users\.username, users\.parent, jobs\.byPuid, /,
  );
  const client = await MongoClient.connect(uri);
  try {
    const db = client.db('agm_load_demo');
    assert.equal(await db.collection('users').countDocuments(), 39);
    const preview = await runCli([
      '--preview',
      '--sources',
      'acme_aviation,regional_ag',
      '--destination',
      'consolidated_ag',
      '--uri',
      uri,
    ]);
    assert.equal(preview.code, 3, "the guide's first preview: two username conflicts");
    assert.match(preview.stdout, /Username conflicts \(2\)/);

    const before = await db.collection('users').find().sort({ _id: 1 }).toArray();
    const again = await spawnNodeAsync(TOOL, ['--uri', uri]);
    assert.equal(again.code, 2, again.stderr);
    assert.match(
      again.stderr,
      /already holds documents in users, jobs, invoices; nothing was loaded\. .*add --drop/,
    );
    assert.deepEqual(await db.collection('users').find().sort({ _id: 1 }).toArray(), before);
    const dropped = await spawnNodeAsync(TOOL, ['--uri', uri, '--drop']);
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.equal(await db.collection('users').countDocuments(), 39);
  } finally {
    await client.close();
  }
});

test('load-snapshot never shows the password of its URI', async () => {
  const result = await spawnNodeAsync(TOOL, [
    '--uri',
    'mongodb://ops:S3cret-pw@127.0.0.1:9/x?serverSelectionTimeoutMS=300',
  ]);
  assert.equal(result.code, 1);
  assert.doesNotMatch(result.stdout + result.stderr, /S3cret/);
});
