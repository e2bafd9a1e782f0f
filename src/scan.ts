import { createHash } from 'node:crypto';
import { BSON, type ObjectId } from 'mongodb';
import { type Conflict, findConflicts, type Tree } from './conflicts.js';
import { ACCOUNT_PROJECTION, type Account, isDeleted, type ResolvedCustomers } from './resolve.js';
import { ADMIN_KIND, CUSTOMER_KIND, type FieldRef, fieldRefs, type ReferenceMap, USERS } from './schema.js';
import type { Document, ReadStore } from './store/types.js';

export interface MigrationOptions {
  mergeConflicts: boolean;
  convertToAdmin: boolean;
  skipInvoices: boolean;
}

/**
 * Above this many modified documents the preview warns that the transaction may be too big. MongoDB kills a
 * transaction after 60 s (transactionLifetimeLimitSeconds) and aborts one that outgrows the WiredTiger cache;
 * an updateMany that sets one ObjectId field writes an oplog entry of roughly 100-150 bytes per document, so
 * 100k documents is ~one 16 MB applyOps entry and a few seconds of server work: comfortably inside both
 * limits on a modest replica set. See "Transaction size" in the README.
 */
export const TRANSACTION_WARNING_DOCUMENTS = 100_000;

export type StepAction =
  | 'repoint-account-refs'
  | 'mark-merged-account'
  | 'repoint-customer-refs'
  | 'deactivate-sources'
  | 'convert-sources';

/** One server-side updateMany: the plan says exactly what will run and how many documents it must match. */
export interface Step {
  action: StepAction;
  collection: string;
  /** The reference field re-pointed, for the repoint steps. */
  field?: string;
  filter: Document;
  update: Document;
  expected: number;
}

export interface SkippedRef {
  collection: string;
  field: string;
  documents: number;
}

export interface CustomerSummary {
  _id: ObjectId;
  username: string;
  active: boolean;
  subAccounts: { total: number; softDeleted: number; byKind: Record<string, number> };
}

export interface Plan {
  sources: CustomerSummary[];
  destination: CustomerSummary;
  options: MigrationOptions;
  conflicts: Conflict[];
  /** True when execution with these options would stop on conflicts. */
  blocked: boolean;
  steps: Step[];
  /** References --skip-invoices leaves pointing at the sources. */
  skipped: SkippedRef[];
  estimate: { documents: number; threshold: number };
  warnings: string[];
  /** Stable digest of what would run; `--expect-plan` insists the executed plan is the reviewed one. */
  fingerprint: string;
}

/**
 * Works out everything a migration would do, reading only: the conflicts, then one updateMany per reference
 * field with the number of documents it must match. Run for the preview and again inside the transaction.
 * Its database commands do not depend on how many documents move (counts, not reads, for jobs and
 * invoices); memory grows only with the number of accounts in the trees involved.
 */
export async function scanMigration(
  store: ReadStore,
  customers: ResolvedCustomers,
  options: MigrationOptions,
  map: ReferenceMap,
  now: Date,
): Promise<Plan> {
  const { sources, destination } = customers;
  const trees = await readTrees(store, [destination, ...sources]);
  const [destinationTree, ...sourceTrees] = trees as [Tree, ...Tree[]];
  const conflicts = findConflicts(destinationTree, sourceTrees, options.convertToAdmin);
  const blocked =
    conflicts.length > 0 &&
    (!options.mergeConflicts || conflicts.some((c) => c.resolution.action === 'block'));

  const skipped = (ref: FieldRef) => options.skipInvoices && ref.invoice;
  const merges =
    options.mergeConflicts && !blocked ? await mergeSteps(store, conflicts, map, skipped, now) : [];
  const customer = await customerSteps(store, customers, map, skipped);
  const steps = [...merges, ...customer.steps, sourceStep(customers, options, now)];

  const documents = steps.reduce((sum, step) => sum + step.expected, 0);
  const summaries = trees.map(summarize);
  const plan: Omit<Plan, 'fingerprint'> = {
    sources: summaries.slice(1),
    destination: summaries[0] as CustomerSummary,
    options,
    conflicts,
    blocked,
    steps,
    skipped: customer.skipped,
    estimate: { documents, threshold: TRANSACTION_WARNING_DOCUMENTS },
    warnings: warningsFor(summaries, documents),
  };
  return { ...plan, fingerprint: fingerprintOf(plan) };
}

/** Per merged account: its account references move to the survivor, then it is marked merged. */
async function mergeSteps(
  store: ReadStore,
  conflicts: Conflict[],
  map: ReferenceMap,
  skipped: (ref: FieldRef) => boolean,
  now: Date,
): Promise<Step[]> {
  const steps: Step[] = [];
  for (const { resolution } of conflicts) {
    if (resolution.action !== 'merge') continue;
    const { loser, survivor } = resolution;
    for (const ref of fieldRefs(map.accountRefs, map)) {
      if (skipped(ref)) continue;
      const filter = { [ref.field]: loser };
      const expected = await store.count(ref.collection, filter);
      if (expected === 0) continue;
      const update = { $set: { [ref.field]: survivor } };
      steps.push({
        action: 'repoint-account-refs',
        collection: ref.collection,
        field: ref.field,
        filter,
        update,
        expected,
      });
    }
    steps.push({
      action: 'mark-merged-account',
      collection: USERS,
      filter: { _id: loser, markedDelete: { $ne: true } },
      update: { $set: { markedDelete: true, active: false, mergedInto: survivor, mergedAt: now } },
      expected: 1,
    });
  }
  return steps;
}

/** One updateMany per customer reference field, for all sources at once; skipped fields are only counted. */
async function customerSteps(
  store: ReadStore,
  { sources, destination }: ResolvedCustomers,
  map: ReferenceMap,
  skipped: (ref: FieldRef) => boolean,
): Promise<{ steps: Step[]; skipped: SkippedRef[] }> {
  const result: { steps: Step[]; skipped: SkippedRef[] } = { steps: [], skipped: [] };
  for (const ref of fieldRefs(map.customerRefs, map)) {
    const filter = { [ref.field]: { $in: sources.map((source) => source._id) } };
    const expected = await store.count(ref.collection, filter);
    if (skipped(ref)) {
      result.skipped.push({ collection: ref.collection, field: ref.field, documents: expected });
      continue;
    }
    const update = { $set: { [ref.field]: destination._id } };
    result.steps.push({
      action: 'repoint-customer-refs',
      collection: ref.collection,
      field: ref.field,
      filter,
      update,
      expected,
    });
  }
  return result;
}

/** The sources end deactivated, or with --convert-to-admin as active admins under the destination. */
function sourceStep({ sources, destination }: ResolvedCustomers, options: MigrationOptions, now: Date): Step {
  const filter = {
    _id: { $in: sources.map((source) => source._id) },
    kind: CUSTOMER_KIND,
    markedDelete: { $ne: true },
  };
  const migrated = { migratedTo: destination._id, migratedAt: now };
  const admin = { kind: ADMIN_KIND, parent: destination._id, active: true, convertedFrom: CUSTOMER_KIND };
  const deactivated = { active: false, markedDelete: true };
  return {
    action: options.convertToAdmin ? 'convert-sources' : 'deactivate-sources',
    collection: USERS,
    filter,
    update: { $set: { ...(options.convertToAdmin ? admin : deactivated), ...migrated } },
    expected: sources.length,
  };
}

async function readTrees(store: ReadStore, customers: Account[]): Promise<Tree[]> {
  const byParent = new Map<string, Account[]>(customers.map((customer) => [customer._id.toHexString(), []]));
  const cursor = store.find(
    USERS,
    { parent: { $in: customers.map((customer) => customer._id) }, kind: { $ne: CUSTOMER_KIND } },
    { projection: ACCOUNT_PROJECTION, sort: { _id: 1 } },
  );
  for await (const account of cursor) byParent.get(String(account.parent))?.push(account as Account);
  return customers.map((customer) => ({
    customer,
    accounts: byParent.get(customer._id.toHexString()) ?? [],
  }));
}

function summarize(tree: Tree): CustomerSummary {
  const byKind: Record<string, number> = {};
  for (const account of tree.accounts) byKind[account.kind] = (byKind[account.kind] ?? 0) + 1;
  return {
    _id: tree.customer._id,
    username: tree.customer.username,
    active: tree.customer.active !== false,
    subAccounts: { total: tree.accounts.length, softDeleted: tree.accounts.filter(isDeleted).length, byKind },
  };
}

function warningsFor(summaries: CustomerSummary[], documents: number): string[] {
  const [destination, ...sources] = summaries as [CustomerSummary, ...CustomerSummary[]];
  const warnings: string[] = [];
  if (!destination.active) {
    warnings.push(
      `Destination ${destination.username} is inactive (active: false); its new data will be inactive too`,
    );
  }
  for (const source of sources.filter((s) => !s.active)) {
    warnings.push(`Source ${source.username} is already inactive (active: false)`);
  }
  if (documents > TRANSACTION_WARNING_DOCUMENTS) {
    warnings.push(
      `About ${documents} documents would change in one transaction (warning threshold ${TRANSACTION_WARNING_DOCUMENTS}); if it times out, migrate fewer sources at a time`,
    );
  }
  return warnings;
}

/** Dates are left out: the same plan made a second later must have the same fingerprint. */
function fingerprintOf(plan: Omit<Plan, 'fingerprint'>): string {
  const essence = {
    sources: plan.sources.map((source) => source._id),
    destination: plan.destination._id,
    options: plan.options,
    conflicts: plan.conflicts.map((c) => [c.incoming._id, c.existing._id, c.resolution]),
    steps: plan.steps.map((step) => [
      step.action,
      step.collection,
      step.field ?? null,
      step.filter,
      step.expected,
    ]),
    skipped: plan.skipped,
  };
  const text = BSON.EJSON.stringify(essence, { relaxed: false });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
