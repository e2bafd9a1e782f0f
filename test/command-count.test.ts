import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MongoClient, type ObjectId } from 'mongodb';
import {
  createSeed,
  DESTINATION_USERNAME,
  insertSeed,
  type Seed,
  SOURCE_USERNAME,
  writeSnapshotSeed,
} from '../bench/seed.js';
import { type ApplyRequest, applyMigration } from '../src/apply.js';
import { DEFAULT_REFERENCE_MAP } from '../src/schema.js';
import { countingStore } from '../src/store/counting.js';
import { MongoStore } from '../src/store/mongo.js';
import { parseSnapshot, SnapshotStore } from '../src/store/snapshot.js';
import { spawnNodeAsync } from './helpers/cli.js';
import { type MongoServer, startMongo, withDatabase } from './helpers/mongo-server.js';
import { startWirePeer } from './wire-peer/index.js';

// The engine's promise (see scanMigration): the commands of a migration do not depend on how many documents
// move. Two sizes, the same data otherwise; the count may differ by a few (getMore batches), never by N.
const SMALL = 1_000;
const LARGE = 20_000;
const SLACK = 5;
const CEILING = 50;

const request: ApplyRequest = {
  sources: [SOURCE_USERNAME],
  destination: DESTINATION_USERNAME,
  options: { mergeConflicts: true, convertToAdmin: false, skipInvoices: false },
  map: DEFAULT_REFERENCE_MAP,
  run: { id: 'command-count', now: new Date() },
};

type CountBy = (collection: string, field: string, id: ObjectId) => Promise<number> | number;

/** Everything moved and nothing else did, so the command counts cannot pass on a migration that did nothing. */
async function assertMigrated(seed: Seed, countBy: CountBy): Promise<void> {
  const { n, sourceId, destinationId, noiseId, merge, expected } = seed;
  assert.equal(await countBy('jobs', 'byPuid', destinationId), n, 'jobs moved to the destination');
  assert.equal(await countBy('jobs', 'byPuid', sourceId), 0, 'no job left on the source');
  assert.equal(await countBy('invoices', 'customer', destinationId), n, 'invoices moved to the destination');
  assert.equal(await countBy('invoices', 'customer', sourceId), 0, 'no invoice left on the source');
  assert.equal(await countBy('users', 'parent', sourceId), 0, 'no sub-account left under the source');
  assert.equal(await countBy('jobs', 'byPuid', noiseId), expected.noiseJobs, 'unrelated jobs untouched');
  assert.equal(
    await countBy('invoices', 'customer', noiseId),
    expected.noiseInvoices,
    'unrelated invoices untouched',
  );
  assert.ok(merge, 'the seed has an account to merge');
  assert.equal(await countBy('jobs', 'client', merge.loser), 0, 'jobs re-pointed off the merged client');
  assert.ok((await countBy('jobs', 'client', merge.survivor)) > 0, 'jobs re-pointed to the surviving client');
}

function assertFlat(small: number, large: number): void {
  assert.ok(
    Math.abs(large - small) <= SLACK,
    `commands per migration: ${small} at N=${SMALL}, ${large} at N=${LARGE}; they must differ by at most ${SLACK}`,
  );
  assert.ok(large < CEILING, `${large} commands at N=${LARGE}; expected fewer than ${CEILING}`);
}

test('engine commands per migration do not grow with N (snapshot back end)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agm-test-'));
  try {
    const migrate = async (n: number): Promise<number> => {
      const seed = createSeed(n);
      const file = path.join(dir, `seed-${n}.json`);
      await writeSnapshotSeed(file, seed);
      const counting = countingStore(await SnapshotStore.open(file));
      try {
        await applyMigration(counting.store, { ...request, run: { id: `n${n}`, now: new Date() } });
      } finally {
        await counting.store.close();
      }
      const written = parseSnapshot(fs.readFileSync(file, 'utf8'), file);
      await assertMigrated(
        seed,
        (collection, field, id) => (written.get(collection) ?? []).filter((d) => id.equals(d[field])).length,
      );
      return counting.counts().total;
    };
    assertFlat(await migrate(SMALL), await migrate(LARGE));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const mongo = await startMongo();
const peer = await startWirePeer();
after(async () => {
  if ('stop' in mongo) await mongo.stop();
  await peer.close();
});

/**
 * The MongoDB tests run on a real server when there is one, and always on the wire peer: the same driver
 * and tool, commands counted from the driver's own commandStarted events.
 */
const servers: [string, MongoServer | { skip: string }][] = [
  ['wire peer', { uri: peer.uri(), stop: () => peer.close() }],
  ['MongoDB', mongo],
];

for (const [label, server] of servers) {
  test(
    `engine commands per migration do not grow with N (${label})`,
    'skip' in server ? { skip: server.skip } : {},
    async () => {
      if ('skip' in server) return;
      const client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 5000 });
      await client.connect();
      try {
        const migrate = async (n: number): Promise<number> => {
          const seed = createSeed(n);
          const name = `agm_test_commands_${process.pid}_${Date.now().toString(36)}_${n}`;
          const db = client.db(name);
          try {
            await insertSeed(db, seed);
            let commands = 0;
            const store = await MongoStore.open(withDatabase(server.uri, name), {
              onCommand: () => {
                commands += 1;
              },
            });
            let counted: number;
            try {
              const before = commands;
              await applyMigration(store, { ...request, run: { id: `n${n}`, now: new Date() } });
              counted = commands - before;
            } finally {
              await store.close();
            }
            await assertMigrated(seed, (collection, field, id) =>
              db.collection(collection).countDocuments({ [field]: id }),
            );
            return counted;
          } finally {
            await db.dropDatabase();
          }
        };
        assertFlat(await migrate(SMALL), await migrate(LARGE));
      } finally {
        await client.close();
      }
    },
  );

  /**
   * The engine's memory must not grow with the documents it moves: peak RSS of a whole migration in its own
   * process (the bench's child mode, so earlier tests do not count) at N = 1k and N = 100k. The child is
   * the tool and the driver alone; the server, wire peer included, is elsewhere, so on the peer this still
   * measures the tool's memory (not the server's). The child is spawned asynchronously: the peer runs in
   * this process and must keep answering.
   */
  test(
    `peak RSS growth from N = 1k to N = 100k stays under 50 MB (${label})`,
    'skip' in server ? { skip: server.skip } : {},
    async () => {
      if ('skip' in server) return;
      const client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 5000 });
      await client.connect();
      const peak = async (n: number): Promise<number> => {
        const name = `agm_test_rss_${process.pid}_${n}`;
        const db = client.db(name);
        try {
          await insertSeed(db, createSeed(n));
          const bench = fileURLToPath(new URL('../bench/run.js', import.meta.url));
          const child = await spawnNodeAsync(
            bench,
            ['--one', 'mongo', 'engine', String(n), withDatabase(server.uri, name)],
            { env: process.env, timeoutMs: 240_000 },
          );
          assert.equal(child.code, 0, child.stdout + child.stderr);
          const reply = JSON.parse(child.stdout.trim().split('\n').at(-1) ?? '{}');
          assert.ok(reply.modified >= 2 * n, `the migration at N=${n} moved its jobs and invoices`);
          return reply.peakRssMiB;
        } finally {
          await db.dropDatabase();
        }
      };
      try {
        const small = await peak(1_000);
        const large = await peak(100_000);
        assert.ok(
          large - small < 50,
          `peak RSS ${small.toFixed(1)} MiB at 1k, ${large.toFixed(1)} MiB at 100k`,
        );
      } finally {
        await client.close();
      }
    },
  );
}
