import assert from 'node:assert/strict';
import { test } from 'node:test';
import { find } from 'mingo';
import { resolveCustomers } from '../src/resolve.js';
import { scanMigration, TRANSACTION_WARNING_DOCUMENTS } from '../src/scan.js';
import { DEFAULT_REFERENCE_MAP } from '../src/schema.js';
import type { Document, ReadStore } from '../src/store/types.js';
import { demoData } from './helpers/data.js';

/** An in-memory read store over a data set: scan must work from reads alone. */
function readStore(data: Map<string, Document[]>): ReadStore {
  return {
    async *find(collection, filter) {
      yield* find(data.get(collection) ?? [], filter).all();
    },
    async count(collection, filter) {
      return find(data.get(collection) ?? [], filter).all().length;
    },
  };
}

const options = { mergeConflicts: false, convertToAdmin: false, skipInvoices: false };

async function plan(data: Map<string, Document[]>, overrides = {}, now = new Date()) {
  const store = readStore(data);
  const customers = await resolveCustomers(store, {
    sources: ['acme_aviation', 'regional_ag'],
    destination: 'consolidated_ag',
  });
  return scanMigration(store, customers, { ...options, ...overrides }, DEFAULT_REFERENCE_MAP, now);
}

test('the plan is one updateMany per customer reference field, then the deactivation, with counts', async () => {
  const result = await plan(demoData());
  assert.deepEqual(
    result.steps.map((s) => [s.action, s.collection, s.field ?? null, s.expected]),
    [
      ['repoint-customer-refs', 'users', 'parent', 9],
      ['repoint-customer-refs', 'jobs', 'byPuid', 11],
      ['repoint-customer-refs', 'invoices', 'customer', 5],
      ['deactivate-sources', 'users', null, 2],
    ],
  );
  assert.equal(result.blocked, true);
  assert.equal(result.estimate.documents, 27);
  assert.equal(result.estimate.threshold, TRANSACTION_WARNING_DOCUMENTS);
});

test('the fingerprint ignores time but changes with the data and the options', async () => {
  const data = demoData();
  const first = await plan(data, {}, new Date(0));
  assert.equal((await plan(data, {}, new Date())).fingerprint, first.fingerprint);
  assert.notEqual((await plan(data, { skipInvoices: true })).fingerprint, first.fingerprint);
  data.get('jobs')?.push({ byPuid: first.sources[0]?._id });
  assert.notEqual((await plan(data, {}, new Date(0))).fingerprint, first.fingerprint);
});

test('--merge-conflicts plans account re-pointing before the customer references; --skip-invoices drops invoices', async () => {
  const merged = await plan(demoData(), { mergeConflicts: true });
  assert.equal(merged.blocked, false);
  const actions = merged.steps.map((s) => s.action);
  assert.ok(actions.lastIndexOf('mark-merged-account') < actions.indexOf('repoint-customer-refs'));
  assert.equal(merged.steps.filter((s) => s.action === 'mark-merged-account').length, 2);
  const skipped = await plan(demoData(), { mergeConflicts: true, skipInvoices: true });
  assert.equal(
    skipped.steps.some((s) => s.collection === 'invoices'),
    false,
  );
  assert.deepEqual(
    skipped.skipped.map((s) => [s.collection, s.field, s.documents]),
    [['invoices', 'customer', 5]],
  );
});

test('a transaction above the threshold is warned about', async () => {
  const data = demoData();
  const source = (await plan(data)).sources[1]?._id;
  const jobs = data.get('jobs') ?? [];
  for (let i = 0; i < TRANSACTION_WARNING_DOCUMENTS; i += 1) jobs.push({ byPuid: source });
  const big = await plan(data);
  assert.match(
    big.warnings.join('\n'),
    /About 100027 documents would change in one transaction \(warning threshold 100000\)/,
  );
});
