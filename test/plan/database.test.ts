import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { MongoClient } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import { assertNoFile } from '../helpers/assertions.js';
import { type Backend, mongoBackend, testOn, wirePeerBackend } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';
import { withDatabase } from '../helpers/mongo-server.js';

/** A typo in the URI's database name reaches a database that does not exist, which a server reads as empty. */
for (const backend of [await wirePeerBackend('database'), await mongoBackend('database')] as Backend[]) {
  describe(`a database without the users collection on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });

    it('is named as such by every command (exit 2), not reported as customers not found; nothing is written', async () => {
      const loaded = await backend.load(demoData());
      const uri = loaded.args[1] as string;
      const database = new ConnectionString(uri).pathname.slice(1);
      const typo = database.replace('test', 'tst');
      const wrong = withDatabase(uri, typo);
      const before = await loaded.state();
      const history = join(dir.path, 'history.json');
      const migrate = ['--sources', 'acme_west', '--destination', 'acme_corporate'];
      for (const args of [
        ['--preview', ...migrate],
        migrate,
        ['verify', '0b8e7b8a-0000-4000-8000-000000000000'],
        ['rollback', '0b8e7b8a-0000-4000-8000-000000000000', '--preview'],
        ['rollback', '0b8e7b8a-0000-4000-8000-000000000000'],
      ]) {
        const result = await runCli([...args, '--uri', wrong, '--output-file', history]);
        assert.equal(result.code, 2, `${args[0]}: ${result.stderr}`);
        assert.match(
          result.stderr,
          new RegExp(
            `^Error: MongoDB \\S+/${typo} has no users collection, so no customers: check the database name \\(for a server, the path of the URI`,
          ),
        );
        assert.doesNotMatch(result.stderr, /not found|No journal entry/);
      }
      assertNoFile(history);
      assert.equal(await loaded.state(), before);
      const client = await MongoClient.connect(uri);
      try {
        assert.deepEqual(await client.db(typo).listCollections().toArray(), [], 'nothing created there');
      } finally {
        await client.close();
      }
    });
  });
}
