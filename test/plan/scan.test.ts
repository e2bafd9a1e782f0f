import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregate, find } from 'mingo';
import { ObjectId } from 'mongodb';
import { resolveCustomers } from '../../src/plan/resolve.js';
import { isBlocked, scanMigration } from '../../src/plan/scan.js';
import { DEFAULT_REFERENCE_MAP } from '../../src/plan/schema.js';
import type { Document, ReadStore } from '../../src/store/types.js';
import { demoData, IDS } from '../helpers/data.js';

/** An in-memory read store over a data set, counting its calls: scan must work from reads alone. */
function readStore(data: Map<string, Document[]>): ReadStore & { calls: number } {
  const store = {
    calls: 0,
    async *find(collection: string, filter: Document) {
      store.calls += 1;
      yield* find(data.get(collection) ?? [], filter).all();
    },
    async count(collection: string, filter: Document) {
      store.calls += 1;
      return find(data.get(collection) ?? [], filter).all().length;
    },
    async *aggregate(collection: string, pipeline: Document[]) {
      store.calls += 1;
      yield* aggregate(data.get(collection) ?? [], pipeline);
    },
  };
  return store;
}

const options = { mergeConflicts: false, convertToAdmin: false, skipInvoices: false };

async function plan(
  data: Map<string, Document[]>,
  overrides = {},
  now = new Date(),
  request = { sources: ['acme_aviation', 'regional_ag'], destination: 'consolidated_ag' },
) {
  const store = readStore(data);
  const customers = await resolveCustomers(store, request);
  const result = await scanMigration(store, customers, { ...options, ...overrides }, DEFAULT_REFERENCE_MAP, {
    id: 'test-run',
    now,
  });
  return Object.assign(result, { calls: store.calls });
}

test('the plan is one updateMany per customer reference field, the deactivation and the destination mark', async () => {
  const result = await plan(demoData());
  assert.deepEqual(
    result.steps.map((s) => [s.action, s.collection, s.field ?? null, s.expected]),
    [
      ['repoint-customer-refs', 'users', 'parent', 9],
      ['repoint-customer-refs', 'jobs', 'byPuid', 11],
      ['repoint-customer-refs', 'invoices', 'customer', 5],
      ['deactivate-sources', 'users', null, 2],
      ['mark-destination', 'users', null, 1],
    ],
  );
  assert.equal(isBlocked(result), true, 'the demo data has two conflicts');
  assert.deepEqual(
    result.blockers.map((b) => b.kind),
    ['conflicts'],
  );
  assert.equal(result.estimate.documents, 28);
});

test('the fingerprint ignores time and the run id but changes with the data and the options', async () => {
  const data = demoData();
  const first = await plan(data, {}, new Date(0));
  assert.equal((await plan(data, {}, new Date())).fingerprint, first.fingerprint);
  assert.notEqual((await plan(data, { skipInvoices: true })).fingerprint, first.fingerprint);
  data.get('jobs')?.push({ byPuid: first.sources[0]?._id });
  assert.notEqual((await plan(data, {}, new Date(0))).fingerprint, first.fingerprint);
});

test('--merge-conflicts: one update per account field and one marking every merged account; --skip-invoices counts invoices only', async () => {
  const merged = await plan(demoData(), { mergeConflicts: true });
  assert.equal(isBlocked(merged), false);
  const actions = merged.steps.map((s) => s.action);
  assert.ok(actions.indexOf('mark-merged-accounts') < actions.indexOf('repoint-customer-refs'));
  assert.equal(merged.steps.filter((s) => s.action === 'mark-merged-accounts').length, 1);
  assert.equal(merged.steps.find((s) => s.action === 'mark-merged-accounts')?.expected, 2);
  const skipped = await plan(demoData(), { mergeConflicts: true, skipInvoices: true });
  assert.equal(
    skipped.steps.some((s) => s.collection === 'invoices'),
    false,
  );
  assert.deepEqual(
    skipped.fields
      .filter((f) => f.skipped)
      .map((f) => [f.kind, f.collection, f.field, f.moves.reduce((n, m) => n + m.documents, 0)]),
    [
      ['account', 'invoices', 'client', 3],
      ['customer', 'invoices', 'customer', 5],
    ],
  );
});

test('the number of reads does not grow with the number of merged accounts', async () => {
  const withMerges = async (count: number) => {
    const data = demoData();
    const users = data.get('users') ?? [];
    for (let i = 0; i < count; i += 1) {
      const name = `twin_${i}`;
      users.push({ _id: new ObjectId(), username: name, kind: '3', parent: new ObjectId(IDS.acme_aviation) });
      users.push({
        _id: new ObjectId(),
        username: name,
        kind: '3',
        parent: new ObjectId(IDS.consolidated_ag),
      });
    }
    const result = await plan(data, { mergeConflicts: true }, new Date(), {
      sources: ['acme_aviation'],
      destination: 'consolidated_ag',
    });
    assert.equal(result.steps.find((s) => s.action === 'mark-merged-accounts')?.expected, count + 2);
    return { calls: result.calls, steps: result.steps.length };
  };
  assert.deepEqual(await withMerges(1), await withMerges(20));
});

test('hex-string references move in their own spelling; references inside arrays block the plan', async () => {
  const data = demoData();
  const source = IDS.acme_west;
  const jobs = data.get('jobs') ?? [];
  jobs.push({ _id: new ObjectId(), byPuid: source }, { _id: new ObjectId(), byPuid: source });
  const stringy = await plan(data, {}, new Date(), { sources: ['acme_west'], destination: 'acme_corporate' });
  const field = stringy.fields.find((f) => f.collection === 'jobs' && f.field === 'byPuid');
  assert.deepEqual(
    field?.moves.map((m) => [typeof m.from, String(m.to), m.documents]),
    [
      ['object', IDS.acme_corporate, 4],
      ['string', IDS.acme_corporate, 2],
    ],
  );
  assert.equal(isBlocked(stringy), false);
  jobs.push({ _id: new ObjectId(), byPuid: [new ObjectId(source), new ObjectId(IDS.valley_sprayers)] });
  const arrays = await plan(data, {}, new Date(), { sources: ['acme_west'], destination: 'acme_corporate' });
  assert.deepEqual(
    arrays.blockers.map((b) => b.kind),
    ['array-references'],
  );
  assert.match(
    arrays.blockers[0]?.message ?? '',
    /jobs\.byPuid: 1 document\(s\) hold a moved id inside an array/,
  );
});
