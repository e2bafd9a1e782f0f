import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DEFAULT_HISTORY_FILE } from '../../src/cli/options.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { countWhere, lastRecord } from '../helpers/assertions.js';
import { wirePeerBackend } from '../helpers/backends.js';
import { LAUNCHER, spawnCli, spawnCliAsync, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';
import { startWirePeer } from '../wire-peer/index.js';

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

test('the guide command runs as written through the launcher against a server (--uri, the wire peer)', async () => {
  const peer = await wirePeerBackend('launcher');
  try {
    const loaded = await peer.load(demoData());
    const before = await loaded.dump();
    const history = join(dir.path, 'uri-history.json');
    // Asynchronous: the peer answers from this process while the child runs.
    const result = await spawnCliAsync([
      '--sources',
      'acme_west,acme_east',
      '--destination',
      'acme_corporate',
      ...loaded.args,
      '--output-file',
      history,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(lastRecord(history).status, 'completed');
    const after = await loaded.dump();
    const jobsOf = (docs: typeof before, ids: string[]) =>
      ids.reduce((sum, id) => sum + countWhere(docs.jobs, 'byPuid', id), 0);
    assert.ok(jobsOf(before, [IDS.acme_west, IDS.acme_east]) > 0, 'the sources had jobs to move');
    assert.equal(jobsOf(after, [IDS.acme_west, IDS.acme_east]), 0);
    assert.equal(
      jobsOf(after, [IDS.acme_corporate]),
      jobsOf(before, [IDS.acme_corporate, IDS.acme_west, IDS.acme_east]),
    );
  } finally {
    await peer.close();
  }
});

for (const signal of ['SIGHUP', 'SIGINT'] as const) {
  test(`a real ${signal} to the launcher inside the transaction: killed on the server, nothing committed, exit 1`, async () => {
    const peer = await startWirePeer();
    const backend = await wirePeerBackend('signal', peer);
    try {
      const loaded = await backend.load(demoData());
      const before = await loaded.state();
      const history = join(dir.path, `${signal}-history.json`);
      // The first update inside the transaction is held 3 s: long enough to be interrupted in it.
      peer.failCommand({
        mode: { times: 1 },
        data: { failCommands: ['update'], blockConnection: true, blockTimeMS: 3_000 },
      });
      peer.clearLog();
      const result = await spawnCliAsync(
        [
          '--sources',
          'acme_west,acme_east',
          '--destination',
          'acme_corporate',
          ...loaded.args,
          '--output-file',
          history,
        ],
        // Half a second after the transaction starts, its first update is being held.
        { interrupt: { when: /Applying in one transaction:/, signal, afterMs: 500 } },
      );
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`Interrupted \\(${signal}\\): stopping at the next safe point`));
      assert.match(result.stderr, /before the commit: the transaction was aborted, nothing was committed/);
      assert.ok(
        peer.log.some((entry) => entry.name === 'killSessions'),
        'the server transaction was killed, not left to its lifetime limit',
      );
      assert.equal(peer.log.filter((entry) => entry.name === 'commitTransaction').length, 0);
      assert.equal(await loaded.state(), before);
      assert.equal(lastRecord(history).status, 'failed');
      assert.equal(existsSync(`${history}.lock`), false);
    } finally {
      await backend.close();
    }
  });
}

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
