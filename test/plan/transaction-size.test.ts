import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { resolveCustomers } from '../../src/plan/resolve.js';
import { scanMigration } from '../../src/plan/scan.js';
import { DEFAULT_REFERENCE_MAP } from '../../src/plan/schema.js';
import { assessPlan } from '../../src/plan/server-checks.js';
import { ASSUMED, assessSize } from '../../src/plan/transaction-size.js';
import { openReadOnlyStore } from '../../src/store/index.js';
import type { ServerFacts } from '../../src/store/types.js';
import { snapshotBackend } from '../helpers/backends.js';
import { buildData, newId } from '../helpers/data.js';

/**
 * The transaction's cost and the server's limits, from the figures the server gives ($collStats, serverStatus,
 * getParameter) as ServerFacts: which limit binds, by how much, and the phases proposed when one is exceeded.
 */
const backend = snapshotBackend();
after(() => backend.close());

const MIB = 2 ** 20;
const JOB_BYTES = 400;
const ENTRY_BYTES = 30;
const USER_BYTES = 200;

/** Sources a, b, c (jobs per source as given) into d; jobs.byPuid is the only field that moves. */
async function planFor(jobsPerSource: Record<string, number>) {
  const { data, ids } = buildData({
    d: [],
    ...Object.fromEntries(Object.keys(jobsPerSource).map((s) => [s, []])),
  });
  for (const [source, count] of Object.entries(jobsPerSource)) {
    // buildData gave each customer one job already.
    for (let i = 1; i < count; i += 1) data.get('jobs')?.push({ _id: newId(), byPuid: ids[source] });
  }
  const loaded = await backend.load(data);
  const store = await openReadOnlyStore(loaded.target);
  try {
    const customers = await resolveCustomers(store, {
      sources: Object.keys(jobsPerSource),
      destination: 'd',
    });
    const options = { mergeConflicts: false, convertToAdmin: false, skipInvoices: false };
    return await scanMigration(store, customers, options, DEFAULT_REFERENCE_MAP, {
      id: 'x',
      now: new Date(),
    });
  } finally {
    await store.close();
  }
}

/** What a server with a cache of `cacheBytes` and the given jobs collection reports. */
function facts(cacheBytes: number, overrides: Partial<ServerFacts> = {}): ServerFacts {
  return {
    indexes: {
      users: [
        { name: '_id_', key: { _id: 1 } },
        { name: 'parent_1', key: { parent: 1 } },
      ],
      jobs: [
        { name: '_id_', key: { _id: 1 } },
        { name: 'byPuid_1', key: { byPuid: 1 } },
      ],
      invoices: [
        { name: '_id_', key: { _id: 1 } },
        { name: 'customer_1', key: { customer: 1 } },
      ],
    },
    shardKeys: {},
    sizes: {
      users: { count: 4, avgObjSize: USER_BYTES, indexSizes: {} },
      jobs: {
        count: 10_000,
        avgObjSize: JOB_BYTES,
        indexSizes: { _id_: 200_000, byPuid_1: 10_000 * ENTRY_BYTES },
      },
    },
    cache: {
      sizeBytes: cacheBytes,
      dirtyTrigger: 20,
      updatesTrigger: 0,
      triggerSource: "WiredTiger's defaults",
    },
    transactionLifetimeSeconds: 60,
    unknown: [],
    ...overrides,
  };
}

/** One source moving `jobs` jobs: each rewritten, its byPuid entry removed and inserted, its id journaled. */
function bytesFor(jobs: number): number {
  return jobs * (JOB_BYTES + 2 * ENTRY_BYTES + ASSUMED.journalIdBytes) + 3 * USER_BYTES;
}

test("the estimate uses the server's sizes: documents, the moved field's index entries, the journal", async () => {
  const plan = await planFor({ a: 800 });
  const size = assessSize(plan, facts(10 * MIB));
  assert.equal(size.cost.documentBytes, 800 * JOB_BYTES + USER_BYTES);
  assert.equal(size.cost.indexBytes, 800 * 2 * ENTRY_BYTES);
  assert.equal(size.cost.journalBytes, 800 * ASSUMED.journalIdBytes + 2 * USER_BYTES);
  assert.equal(size.cost.bytes, bytesFor(800));
  assert.equal(size.cost.documents, 801);
  assert.equal(size.cost.seconds, 800 / ASSUMED.documentsPerSecond);
});

test('the cache limit is the lower trigger (updates: half the 20 % dirty trigger) less what the workload holds', async () => {
  const plan = await planFor({ a: 800 });
  const cache = (size: ReturnType<typeof assessSize>) => size.limits.find((l) => l.name === 'cache');
  const fresh = cache(assessSize(plan, facts(10 * MIB)));
  assert.equal(fresh?.limit, MIB);
  assert.match(
    fresh?.basis ?? '',
    /^eviction_updates_trigger, 1\.0 MiB \(10 % of the 10 MiB cache, from WiredTiger's defaults\) \(serverStatus does not say what the workload already holds/,
  );
  const base = facts(10 * MIB);
  const busy = cache(
    assessSize(plan, {
      ...base,
      cache: { ...(base.cache as NonNullable<ServerFacts['cache']>), updatesBytes: MIB / 4, dirtyBytes: MIB },
    }),
  );
  assert.equal(busy?.limit, MIB - MIB / 4);
  assert.match(busy?.basis ?? '', /less 256 KiB of updates the workload already holds/);
  // Set by configuration: a dirty trigger of 6 % makes the updates trigger 3 %; an absolute one is bytes.
  const configured = (dirtyTrigger: number, updatesTrigger: number) =>
    cache(
      assessSize(
        plan,
        facts(10 * MIB, { cache: { sizeBytes: 10 * MIB, dirtyTrigger, updatesTrigger, triggerSource: 'x' } }),
      ),
    );
  assert.equal(configured(6, 0)?.limit, 0.03 * 10 * MIB);
  assert.equal(configured(20, 2 * MIB)?.limit, 2 * MIB);
  assert.match(configured(20, 25)?.basis ?? '', /^eviction_dirty_trigger, 2\.0 MiB \(20 %/);
});

test('which limit binds, and by how much: the cache on a small host, the time on a large one', async () => {
  const plan = await planFor({ a: 800, b: 800, c: 800 });
  const small = assessSize(plan, facts(10 * MIB));
  assert.equal(small.binding.name, 'cache');
  assert.equal(small.binding.share, (3 * bytesFor(800)) / MIB);
  assert.equal(small.over, true);
  const large = assessSize(plan, facts(64 * 2 ** 30, { transactionLifetimeSeconds: 0.4 }));
  assert.equal(large.binding.name, 'time');
  assert.equal(large.binding.share, 2400 / ASSUMED.documentsPerSecond / 0.4);
  const fits = assessSize(plan, facts(64 * 2 ** 30));
  assert.equal(fits.over, false);
  assert.deepEqual(fits.phases, []);
});

test('over a limit: phases of sources in their order, each within 80 % of every limit', async () => {
  const plan = await planFor({ a: 800, b: 800, c: 800 });
  const size = assessSize(plan, facts(10 * MIB));
  // Two sources use 73 % of the 1 MiB budget, three 110 %.
  assert.deepEqual(
    size.phases.map((phase) => phase.sources.map((s) => s.username)),
    [['a', 'b'], ['c']],
  );
  assert.equal(size.phases[0]?.shares.cache, (2 * bytesFor(800)) / MIB);
  assert.deepEqual(size.alone, []);
  const store = { find: async function* () {}, count: async () => 0, aggregate: async function* () {} };
  const { warnings } = await assessPlan(store, plan, facts(10 * MIB), 'customer_migrations');
  assert.ok(
    warnings.includes(
      'The transaction would exceed the cache limit (110 % of it) and be aborted: migrate in 2 phases (below), each within 80 % of every limit',
    ),
    warnings.join('\n'),
  );
});

test('a source that exceeds a limit alone is named, with what to change', async () => {
  const plan = await planFor({ a: 100, b: 3_000 });
  const size = assessSize(plan, facts(10 * MIB));
  assert.deepEqual(
    size.alone.map((s) => s.username),
    ['b'],
  );
  const store = { find: async function* () {}, count: async () => 0, aggregate: async function* () {} };
  const { warnings } = await assessPlan(store, plan, facts(10 * MIB), 'customer_migrations');
  assert.match(
    warnings.join('\n'),
    /b alone exceeds the cache limit \(\d+ % of it\), so no phase can hold it: raise the WiredTiger cache \(storage\.wiredTiger\.engineConfig\.cacheSizeGB\) or, for the maintenance window, its eviction triggers/,
  );
});

test('without the server figures: no cache limit, the default lifetime, assumed sizes, each said', async () => {
  const plan = await planFor({ a: 10 });
  const size = assessSize(plan, { shardKeys: {}, unknown: [] });
  assert.deepEqual(
    size.limits.map((l) => [l.name, l.limit, l.basis]),
    [['time', 60, 'transactionLifetimeLimitSeconds, assumed at its default of 60 s']],
  );
  assert.equal(size.cost.documentBytes, 11 * ASSUMED.documentBytes);
  assert.match(
    size.assumptions.join('\n'),
    /1024 bytes per document of jobs \(the server gave no average size\)/,
  );
  assert.match(size.assumptions.join('\n'), /no cache figures: the cache limit could not be checked/);
});

test('an unindexed moved field adds two collection scans to the time', async () => {
  const plan = await planFor({ a: 10 });
  const indexed = assessSize(plan, facts(10 * MIB));
  const base = facts(10 * MIB);
  const bare = assessSize(plan, {
    ...base,
    indexes: { ...base.indexes, jobs: [{ name: '_id_', key: { _id: 1 } }] },
  });
  assert.equal(bare.cost.seconds - indexed.cost.seconds, (2 * 10_000) / ASSUMED.scannedPerSecond);
});

test('a journal collection sharded on anything but _id refuses the plan; _id and hashed _id are fine', async () => {
  const plan = await planFor({ a: 10 });
  const store = { find: async function* () {}, count: async () => 0, aggregate: async function* () {} };
  const check = async (key: Record<string, unknown>) =>
    (
      await assessPlan(
        store,
        plan,
        facts(10 * MIB, { shardKeys: { customer_migrations: key } }),
        'customer_migrations',
      )
    ).blockers;
  assert.deepEqual(await check({ _id: 1 }), []);
  assert.deepEqual(await check({ _id: 'hashed' }), []);
  const [blocker] = await check({ migration: 1 });
  assert.match(
    blocker?.message ?? '',
    /^the journal collection customer_migrations is sharded on \{"migration":1\}: _id is then unique only per shard, and the fence that settles an unknown commit would prove nothing/,
  );
});
