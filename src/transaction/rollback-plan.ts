import { BSON, type Document, ObjectId } from 'mongodb';
import { scalarFilter } from '../plan/scan.js';
import { USERS } from '../plan/schema.js';
import { UsageError } from '../shared/errors.js';
import { showValue } from '../shared/plain.js';
import { collect, type ReadStore } from '../store/types.js';
import { chunksOf, type JournalAccount, type JournalChunk, type JournalHead, readHead } from './journal.js';

/** Drifted documents listed in a refusal; the rest are counted. */
const DRIFT_LIST_CAP = 20;

export interface DriftItem {
  collection: string;
  id: string;
  /** The fields that no longer hold what the migration left there. */
  fields: string[];
  detail: string;
}

export interface RollbackPlan {
  head: JournalHead;
  /** Per collection.field and value: how many documents go back. */
  restores: {
    collection: string;
    field: string;
    from: ObjectId | string;
    to: ObjectId | string;
    documents: number;
  }[];
  accounts: JournalAccount[];
  drift: { items: DriftItem[]; total: number };
  /** Why the rollback cannot run (drift, already rolled back, later migrations). */
  blockers: string[];
}

/** Two documents are the same when their canonical Extended JSON is: values, types and field order. */
function sameDocument(a: Document | undefined, b: Document | undefined): boolean {
  if (!a || !b) return a === b;
  return BSON.EJSON.stringify(a, { relaxed: false }) === BSON.EJSON.stringify(b, { relaxed: false });
}

function differingFields(current: Document, expected: Document): string[] {
  const keys = new Set([...Object.keys(current), ...Object.keys(expected)]);
  return [...keys].filter((key) => !sameDocument({ v: current[key] }, { v: expected[key] }));
}

/** The journal entry of a migration, or an input error saying why there is none to work on. */
export async function journalEntry(
  store: ReadStore,
  journal: string,
  id: string,
  where: string,
): Promise<JournalHead> {
  const head = await readHead(store, journal, id);
  if (!head) {
    throw new UsageError(
      `No journal entry ${id} in ${journal} on ${where}: that migration did not commit there (check the id with the history command, and the --uri/--snapshot)`,
    );
  }
  if (head.type === 'fence') {
    throw new UsageError(
      `Migration ${id} never committed: its unknown commit was settled as not committed (${head.reason})`,
    );
  }
  if (head.type !== 'migration')
    throw new UsageError(`Journal entry ${id} is a ${String(head.type)}, not a migration`);
  return head as JournalHead;
}

/**
 * Reads everything a rollback would restore and checks, document by document, that the data still holds
 * what the migration wrote: any change since (drift) makes the rollback refuse rather than overwrite it.
 * Reads only; run for the preview and again inside the rollback's transaction.
 */
export async function planRollback(
  store: ReadStore,
  journal: string,
  id: string,
  where: string,
): Promise<RollbackPlan> {
  const head = await journalEntry(store, journal, id, where);
  const drift: RollbackPlan['drift'] = { items: [], total: 0 };
  const addDrift = (item: DriftItem) => {
    drift.total += 1;
    if (drift.items.length < DRIFT_LIST_CAP) drift.items.push(item);
  };
  const blockers: string[] = [];
  if (head.status === 'rolled_back') {
    blockers.push(
      `migration ${id} was already rolled back (by ${head.rolledBackBy} at ${head.rolledBackAt?.toISOString()}); a migration is rolled back once`,
    );
  }
  for (const later of await laterMigrations(store, journal, head)) {
    blockers.push(
      `migration ${String(later._id)} (${later.startedAt?.toISOString?.() ?? ''}) later moved these customers' data again: roll it back first`,
    );
  }
  for await (const chunk of chunksOf(store, journal, id)) {
    for (const item of await driftIn(store, chunk, chunk.to)) addDrift(item);
  }
  await accountDrift(store, head.accounts, 'after', addDrift);
  const marked = await store.count(USERS, { _id: head.destination._id, migrationsReceived: id });
  if (marked !== 1) {
    addDrift({
      collection: USERS,
      id: head.destination._id.toHexString(),
      fields: ['migrationsReceived'],
      detail: `the destination no longer records migration ${id}`,
    });
  }
  if (drift.total > 0) {
    blockers.push(
      `${drift.total} document(s) changed since the migration (drift); nothing was written. Undo those changes, or restore the rest by hand`,
    );
  }
  return { head, restores: head.refs, accounts: head.accounts, drift, blockers };
}

/** Committed migrations after this one that took any of its customers as a source. */
async function laterMigrations(store: ReadStore, journal: string, head: JournalHead): Promise<Document[]> {
  const customers = [...head.sources.map((source) => source._id), head.destination._id];
  return collect(
    store.find(
      journal,
      {
        type: 'migration',
        status: 'committed',
        _id: { $ne: head._id },
        startedAt: { $gt: head.startedAt },
        'sources._id': { $in: customers },
      },
      { projection: { _id: 1, startedAt: 1 }, sort: { startedAt: 1 } },
    ),
  );
}

/** Documents of a chunk whose field no longer holds `value` (or that are gone): one count, a read only when needed. */
export async function driftIn(store: ReadStore, chunk: JournalChunk, value: unknown): Promise<DriftItem[]> {
  const holding = await store.count(chunk.collection, {
    _id: { $in: chunk.ids },
    ...scalarFilter(chunk.field, [value]),
  });
  if (holding === chunk.ids.length) return [];
  const found = await collect(
    store.find(chunk.collection, { _id: { $in: chunk.ids } }, { projection: { _id: 1, [chunk.field]: 1 } }),
  );
  const byId = new Map(found.map((document) => [idText(document._id), document]));
  const items: DriftItem[] = [];
  for (const id of chunk.ids) {
    const document = byId.get(idText(id));
    if (!document) {
      items.push({ collection: chunk.collection, id: idText(id), fields: [], detail: 'deleted since' });
    } else if (!sameDocument({ v: document[chunk.field] }, { v: value })) {
      items.push({
        collection: chunk.collection,
        id: idText(id),
        fields: [chunk.field],
        detail: `${chunk.field} is ${showValue(document[chunk.field], 'missing')}, expected ${showValue(value, 'missing')}`,
      });
    }
  }
  return items;
}

/** Whole account documents: each must still equal its `after` (for a rollback) or `before` (after one). */
export async function accountDrift(
  store: ReadStore,
  accounts: JournalAccount[],
  expected: 'before' | 'after',
  addDrift: (item: DriftItem) => void,
): Promise<void> {
  if (accounts.length === 0) return;
  const current = await collect(store.find(USERS, { _id: { $in: accounts.map((account) => account._id) } }));
  for (const account of accounts) {
    const document = current.find((candidate) => account._id.equals(candidate._id));
    const image = account[expected];
    if (sameDocument(document, image)) continue;
    addDrift({
      collection: USERS,
      id: account._id.toHexString(),
      fields: document ? differingFields(document, image) : [],
      detail: document ? `${account.role} account edited since` : 'deleted since',
    });
  }
}

function idText(id: unknown): string {
  return id instanceof ObjectId ? id.toHexString() : String(id);
}
