import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import {
  type CreateIndexesOptions,
  type Document,
  MongoClient,
  MongoServerError,
  type ObjectId,
} from 'mongodb';
import { lastRecord } from '../helpers/assertions.js';
import { type Backend, mongoBackend, testOn, wirePeerBackend } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { buildData } from '../helpers/data.js';

/**
 * The unique-index check judged against the server's own rules: each case is refused by the tool exactly when
 * the server would refuse the migration's updates (shown by making one of them directly), and let through when
 * the server accepts them (shown by executing). Only servers have indexes: the wire peer (which enforces unique
 * indexes with their partial filter, sparse and collation) and a real MongoDB when one is given.
 */
const backends: Backend[] = [await wirePeerBackend('unique'), await mongoBackend('unique')];

const MIGRATE = ['--sources', 'west', '--destination', 'hq'];

for (const backend of backends) {
  describe(`unique indexes judged as the server judges them, on the ${backend.name} back end`, () => {
    const it = testOn(backend);
    const dir = tempDir();
    after(async () => {
      await backend.close();
      dir.remove();
    });
    let runs = 0;

    /** The data loaded with one unique index on users; the CLI and a client on that database. */
    const setUp = async (
      customers: Parameters<typeof buildData>[0],
      key: Document,
      options: CreateIndexesOptions = {},
    ) => {
      const { data, ids } = buildData(customers);
      const loaded = await backend.load(data);
      const uri = loaded.target.kind === 'mongodb' ? loaded.target.uri : '';
      const client = await MongoClient.connect(uri);
      await client
        .db()
        .collection('users')
        .createIndex(key, { unique: true, name: 'guard', ...options })
        .catch(async (error) => {
          await client.close();
          throw error;
        });
      runs += 1;
      const history = join(dir.path, `history-${runs}.json`);
      const cli = (args: string[]) => runCli([...args, ...loaded.args, '--output-file', history]);
      /** One of the migration's own updates, made directly: what the server says to it. */
      const reparent = (account: ObjectId) =>
        client
          .db()
          .collection('users')
          .updateOne({ _id: account }, { $set: { parent: ids.hq } });
      return { ids, cli, history, client, reparent };
    };

    const refusedBoth = async (
      context: Awaited<ReturnType<typeof setUp>>,
      account: ObjectId,
      key: RegExp,
      args = MIGRATE,
    ) => {
      try {
        const preview = await context.cli(['--preview', ...args]);
        assert.equal(preview.code, 3, preview.stdout + preview.stderr);
        assert.match(preview.stdout, /unique index guard on users would be violated under the destination/);
        assert.match(preview.stdout, key);
        const execute = await context.cli(args);
        assert.equal(execute.code, 3, execute.stderr);
        assert.equal(lastRecord(context.history).status, 'failed');
        await assert.rejects(context.reparent(account), (error: unknown) => {
          assert.ok(error instanceof MongoServerError);
          assert.equal(error.code, 11000, 'and the server refuses it too');
          return true;
        });
      } finally {
        await context.client.close();
      }
    };

    const allowedBoth = async (context: Awaited<ReturnType<typeof setUp>>) => {
      try {
        const preview = await context.cli(['--preview', ...MIGRATE]);
        assert.equal(preview.code, 0, preview.stdout + preview.stderr);
        assert.doesNotMatch(preview.stdout, /unique index/);
        const execute = await context.cli(MIGRATE);
        assert.equal(execute.code, 0, execute.stderr);
        assert.equal(lastRecord(context.history).status, 'completed', 'and the server accepts it');
      } finally {
        await context.client.close();
      }
    };

    it('without a unique index guarding usernames the preview recommends one; with one it does not', async () => {
      const customers = { hq: [{ username: 'pilot', kind: '5' }], west: [{ username: 'ann', kind: '3' }] };
      // Unique, but over _id too: it refuses no duplicate username.
      const unguarded = await setUp(customers, { _id: 1, username: 1 });
      try {
        const preview = await unguarded.cli(['--preview', ...MIGRATE]);
        assert.equal(preview.code, 0, preview.stdout + preview.stderr);
        assert.match(
          preview.stdout,
          /WARNING: No unique index guards usernames under a customer: .* db\.users\.createIndex\(\{ parent: 1, username: 1 \}, \{ unique: true, partialFilterExpression: \{ markedDelete: false \}, collation: \{ locale: 'en', strength: 2 \} \}\)/,
        );
      } finally {
        await unguarded.client.close();
      }
      const guarded = await setUp(
        customers,
        { parent: 1, username: 1 },
        { partialFilterExpression: { markedDelete: false } },
      );
      try {
        const preview = await guarded.cli(['--preview', ...MIGRATE]);
        assert.doesNotMatch(preview.stdout, /No unique index guards usernames/);
      } finally {
        await guarded.client.close();
      }
    });

    /** west's live "sam" moves under hq, where a soft-deleted "sam" is: no username conflict for the plan. */
    const twin = {
      hq: [{ username: 'sam', kind: '3', markedDelete: true }],
      west: [{ username: 'sam', kind: '3' }],
      other: [{ username: 'ann', kind: '3' }],
    };

    it('plain: a soft-deleted twin under the destination is a real duplicate key, refused', async () => {
      const context = await setUp(twin, { parent: 1, username: 1 });
      await refusedBoth(context, context.ids['west/sam'] as ObjectId, /\(username: "sam"\)/);
    });

    it('partial on live accounts: the soft-deleted twin is outside the index, allowed', async () => {
      await allowedBoth(
        await setUp(twin, { parent: 1, username: 1 }, { partialFilterExpression: { markedDelete: false } }),
      );
    });

    it("partial naming the moved field: combined with the plan's filter, so other customers' names do not count", async () => {
      // "ann" exists under west (moving) and under another customer: never under the same parent.
      const customers = {
        hq: [{ username: 'pilot', kind: '5' }],
        west: [{ username: 'ann', kind: '3' }],
        other: [
          { username: 'ann', kind: '3' },
          { username: 'pilot', kind: '5' },
        ],
      };
      await allowedBoth(
        await setUp(
          customers,
          { parent: 1, username: 1 },
          { partialFilterExpression: { parent: { $exists: true } } },
        ),
      );
    });

    it('merged accounts leave a partial index on live accounts: a merge the server allows is allowed', async () => {
      const customers = { hq: [{ username: 'pilot', kind: '5' }], west: [{ username: 'pilot', kind: '5' }] };
      const context = await setUp(
        customers,
        { parent: 1, username: 1 },
        { partialFilterExpression: { markedDelete: false } },
      );
      try {
        const merge = [...MIGRATE, '--merge-conflicts'];
        const preview = await context.cli(['--preview', ...merge]);
        assert.equal(preview.code, 0, preview.stdout + preview.stderr);
        const execute = await context.cli(merge);
        assert.equal(execute.code, 0, execute.stderr);
        assert.equal(lastRecord(context.history).stats.mergedAccounts, 1);
      } finally {
        await context.client.close();
      }
    });

    it('a converted customer joins the destination: a soft-deleted twin of its username is a real duplicate key', async () => {
      const customers = { hq: [{ username: 'west', kind: '3', markedDelete: true }], west: [] };
      const context = await setUp(customers, { parent: 1, username: 1 });
      await refusedBoth(context, context.ids.west as ObjectId, /\(username: "west"\)/, [
        ...MIGRATE,
        '--convert-to-admin',
      ]);
    });

    it('sparse: only documents without every key field are left out, so other customers do not count', async () => {
      const customers = {
        hq: [{ username: 'pilot', kind: '5' }],
        west: [{ username: 'ann', kind: '3' }],
        other: [{ username: 'ann', kind: '3' }],
      };
      await allowedBoth(await setUp(customers, { parent: 1, username: 1 }, { sparse: true }));
    });

    it('sparse: a missing key field is indexed as null when the moved field is there, so two such accounts clash', async () => {
      const customers = {
        hq: [{ username: 'pilot', kind: '5' }],
        west: [{ username: 'ann', kind: '3' }],
        other: [{ username: 'bob', kind: '3' }],
      };
      const context = await setUp(customers, { parent: 1, email: 1 }, { sparse: true });
      await refusedBoth(context, context.ids['west/ann'] as ObjectId, /\(email: null\)/);
    });

    it('collation: a case-insensitive index makes "SAM" and "sam" one key; without it they are two', async () => {
      const customers = {
        hq: [{ username: 'SAM', kind: '3', markedDelete: true }],
        west: [{ username: 'sam', kind: '3' }],
      };
      await allowedBoth(await setUp(customers, { parent: 1, username: 1 }));
      const strict = await setUp(
        customers,
        { parent: 1, username: 1 },
        { collation: { locale: 'en', strength: 2 } },
      );
      await refusedBoth(strict, strict.ids['west/sam'] as ObjectId, /\(username: "(sam|SAM)"\)/);
    });
  });
}
