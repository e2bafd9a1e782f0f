import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { openStore } from '../../src/store/index.js';
import { lastRecord, readHistoryFile } from '../helpers/assertions.js';
import { allBackends, testOn } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';
import { failOnUpdate } from '../helpers/failing-store.js';

for (const backend of await allBackends('failures')) {
  describe(`all-or-nothing on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });

    for (const n of [1, 3, 4]) {
      it(`a failure at update ${n} of 4 rolls everything back and records "failed" (exit 1)`, async () => {
        const loaded = await backend.load(demoData());
        const history = join(dir.path, `history-${n}.json`);
        const before = await loaded.state();
        const result = await runCli(
          [
            '--sources',
            'acme_west,acme_east',
            '--destination',
            'acme_corporate',
            '--output-file',
            history,
            ...loaded.args,
          ],
          { openStore: failOnUpdate(openStore, n) },
        );
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          new RegExp(`Error: Unexpected error: injected failure on update ${n}; nothing was committed`),
        );
        if (n > 1)
          assert.match(
            result.stderr,
            /users\.parent: re-point to destination: matched 6, modified 6/,
            'earlier updates did run',
          );
        assert.equal(await loaded.state(), before, 'the data is exactly as before');
        const record = lastRecord(history);
        assert.equal(record.status, 'failed');
        assert.equal(record.error?.exitCode, 1);
        assert.deepEqual(record.stats.errors, [record.error?.message]);
        assert.deepEqual(
          record.sources.map((s) => s.id),
          [IDS.acme_west, IDS.acme_east],
        );
        assert.equal(readHistoryFile(history).length, 1);
      });
    }

    it('--expect-plan runs the reviewed plan and refuses a changed one', async () => {
      const loaded = await backend.load(demoData());
      const args = ['--sources', 'acme_west', '--destination', 'acme_corporate', ...loaded.args];
      const preview = await runCli(['--preview', ...args]);
      const fingerprint = /Plan fingerprint: ([0-9a-f]{16})/.exec(preview.stdout)?.[1] as string;
      const history = join(dir.path, 'expect.json');
      const before = await loaded.state();
      const stale = await runCli([
        ...args,
        '--expect-plan',
        fingerprint.replace(/^./, (c) => (c === '0' ? '1' : '0')),
        '--output-file',
        history,
      ]);
      assert.equal(stale.code, 1);
      assert.match(stale.stderr, /The plan changed since it was reviewed/);
      assert.equal(await loaded.state(), before);
      assert.equal(lastRecord(history).status, 'failed');
      const good = await runCli([...args, '--expect-plan', fingerprint, '--output-file', history]);
      assert.equal(good.code, 0, good.stderr);
      assert.equal(lastRecord(history).planFingerprint, fingerprint);
    });
  });
}
