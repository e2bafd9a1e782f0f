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
import { DEFAULT_REFERENCE_MAP } from '../src/plan/schema.js';
import { countingStore } from '../src/store/counting.js';
import { MongoStore } from '../src/store/mongo.js';
import { parseSnapshot, SnapshotStore } from '../src/store/snapshot.js';
import { type ApplyRequest, applyMigration } from '../src/transaction/apply.js';
import { spawnNodeAsync } from './helpers/cli.js';
import { type MongoServer, startMongo, withDatabase } from './helpers/mongo-server.js';
import { startWirePeer } from './wire-peer/index.js';

// The engine's promise (see scanMigration and journal.ts): the commands of a migration do not depend on how
// many documents move, except for the journal, which costs a fixed number of commands per chunk of ids (one
// insert; on MongoDB also the getMore that read them). Nor do they depend on how many accounts merge. Two
// sizes, the same data otherwise: once the chunks are taken off, the counts may differ by a few, never by N.
const SMALL = 1_000;
const LARGE = 20_000;
const MERGES = 20;
const SLACK = 5;
const CEILING = 60;

interface Counted {
  commands: number;
  chunks: number;
}

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

/** `perChunk`: the commands each journal chunk costs on this back end. */
function assertFlat(small: Counted, large: Counted, perChunk: number): void {
  const [a, b] = [small, large].map((c) => c.commands - perChunk * c.chunks) as [number, number];
  assert.ok(
    large.chunks > small.chunks,
    `the journal has more chunks at N=${LARGE} (${large.chunks}) than at N=${SMALL}`,
  );
  assert.ok(
    Math.abs(b - a) <= SLACK,
    `commands per migration less ${perChunk} per journal chunk: ${a} at N=${SMALL}, ${b} at N=${LARGE}; they must differ by at most ${SLACK}`,
  );
  assert.ok(b < CEILING, `${b} commands besides the journal at N=${LARGE}; expected fewer than ${CEILING}`);
}

/** The same N with 1 and with 1 + MERGES merged accounts: the same commands, give or take a batch. */
function assertMergesFlat(one: Counted, many: Counted): void {
  assert.equal(many.chunks, one.chunks, 'the extra merged accounts have no documents of their own');
  assert.ok(
    Math.abs(many.commands - one.commands) <= SLACK,
    `commands per migration: ${one.commands} with 1 merge, ${many.commands} with ${1 + MERGES}`,
  );
}

test('engine commands per migration grow with neither N nor merges, besides the journal chunks (snapshot back end)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agm-test-'));
  try {
    const migrate = async (n: number, extraMerges = 0): Promise<Counted> => {
      const seed = createSeed(n, { extraMerges });
      const file = path.join(dir, `seed-${n}-${extraMerges}.json`);
      await writeSnapshotSeed(file, seed);
      const counting = countingStore(await SnapshotStore.open(file));
      let chunks: number;
      try {
        const applied = await applyMigration(counting.store, {
          ...request,
          run: { id: `n${n}`, now: new Date() },
        });
        assert.equal(applied.plan.conflicts.length, 1 + extraMerges);
        chunks = applied.journal.chunks;
      } finally {
        await counting.store.close();
      }
      const written = parseSnapshot(fs.readFileSync(file, 'utf8'), file);
      await assertMigrated(
        seed,
        (collection, field, id) => (written.get(collection) ?? []).filter((d) => id.equals(d[field])).length,
      );
      return { commands: counting.counts().total, chunks };
    };
    const small = await migrate(SMALL);
    assertFlat(small, await migrate(LARGE), 1);
    assertMergesFlat(small, await migrate(SMALL, MERGES));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const mongo = await startMongo();
// This file measures commands and memory, not time: a 100k migration through the in-process peer (which shares
// the test's CPU) can outlive the default 60 s lifetime on a loaded machine. The limit has its own fault tests.
const peer = await startWirePeer({ transactionLifetimeLimitSeconds: 600 });
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
    `engine commands per migration grow with neither N nor merges, besides the journal chunks (${label})`,
    'skip' in server ? { skip: server.skip } : {},
    async () => {
      if ('skip' in server) return;
      const client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 5000 });
      await client.connect();
      try {
        const migrate = async (n: number, extraMerges = 0): Promise<Counted> => {
          const seed = createSeed(n, { extraMerges });
          const name = `agm_test_commands_${process.pid}_${Date.now().toString(36)}_${n}_${extraMerges}`;
          const db = client.db(name);
          try {
            await insertSeed(db, seed);
            let commands = 0;
            const store = await MongoStore.open(withDatabase(server.uri, name), {
              onCommand: () => {
                commands += 1;
              },
            });
            let counted: Counted;
            try {
              const before = commands;
              const applied = await applyMigration(store, {
                ...request,
                run: { id: `n${n}`, now: new Date() },
              });
              counted = { commands: commands - before, chunks: applied.journal.chunks };
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
        const small = await migrate(SMALL);
        assertFlat(small, await migrate(LARGE), 2);
        assertMergesFlat(small, await migrate(SMALL, MERGES));
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
          const bench = fileURLToPath(new URL('../bench/measure.js', import.meta.url));
          const child = await spawnNodeAsync(
            bench,
            // The peer answers from this process, which a loaded machine can keep busy past the driver's 30 s
            // heartbeat timeout (the monitor then interrupts the run); this test measures memory, not liveness.
            ['mongo', 'engine', String(n), patient(withDatabase(server.uri, name))],
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
      // Peak RSS also measures garbage not yet collected, and when V8 collects it depends on the machine's load
      // (seen here: +20 MB alone, +70 MB beside another test file). A leak shows in every run; the quieter of
      // two runs per size is the tool's own memory.
      const quietest = async (n: number) => {
        const runs = [await peak(n), await peak(n)];
        return { runs, min: Math.min(...runs) };
      };
      try {
        const small = await quietest(1_000);
        const large = await quietest(100_000);
        assert.ok(
          large.min - small.min < 50,
          `peak RSS ${small.runs.map((r) => r.toFixed(1)).join(', ')} MiB at 1k, ${large.runs.map((r) => r.toFixed(1)).join(', ')} MiB at 100k`,
        );
      } finally {
        await client.close();
      }
    },
  );
}

function patient(uri: string): string {
  return `${uri}${uri.includes('?') ? '&' : '?'}connectTimeoutMS=300000`;
}
