import type { ObjectId } from 'mongodb';
import type { ReadStore } from '../store/types.js';
import { type Conflict, findConflicts } from './conflicts.js';
import type { Arrival } from './prior.js';
import { ACCOUNT_PROJECTION, type Account } from './resolve.js';
import { type Plan, scalarFilter, spellings } from './scan.js';
import { CUSTOMER_KIND, fieldRefs, type ReferenceMap, USERS } from './schema.js';

/**
 * What a committed migration checks again afterwards, reading the majority-committed state after its commit:
 * snapshot isolation hid whatever the application wrote while it ran, and nothing conflicted on it.
 */

/**
 * Documents that still hold a value the migration moved away from: a source, in a customer reference field, or a
 * merged account (this run's or one an earlier run of a follow-up source merged), in an account reference field;
 * as an ObjectId or its hex string. Fields --skip-invoices leaves alone are not counted: their references stay
 * by design. One count per field.
 */
export async function recountStragglers(
  store: ReadStore,
  plan: Pick<Plan, 'sources' | 'merges' | 'options'>,
  map: ReferenceMap,
): Promise<Record<string, number>> {
  const sources = plan.sources.flatMap((source) => spellings(source._id));
  const merged = plan.merges.flatMap((merge) => spellings(merge.from));
  const targets = [
    ...fieldRefs(map.customerRefs, map).map((ref) => ({ ...ref, values: sources })),
    ...fieldRefs(map.accountRefs, map).map((ref) => ({ ...ref, values: merged })),
  ];
  const stragglers: Record<string, number> = {};
  for (const ref of targets) {
    if ((plan.options.skipInvoices && ref.invoice) || ref.values.length === 0) continue;
    const left = await store.count(ref.collection, scalarFilter(ref.field, ref.values));
    if (left > 0)
      stragglers[`${ref.collection}.${ref.field}`] =
        (stragglers[`${ref.collection}.${ref.field}`] ?? 0) + left;
  }
  return stragglers;
}

/**
 * Live accounts under the destination that share a username (trimmed, case-insensitive, as the conflict check
 * compares them) with one the migration brought there: the application created one under the destination while
 * the migration ran (write skew: each side read a state without the other). Reported as conflicts, the incoming
 * account against the one already there, with what --merge-conflicts would do; a follow-up run with it resolves
 * them. Reads the destination's accounts once.
 */
export async function usernameClashes(
  store: ReadStore,
  destination: { _id: ObjectId; username: string },
  arrivals: Arrival[],
): Promise<Conflict[]> {
  if (arrivals.length === 0) return [];
  const accounts = new Map<string, Account>();
  const cursor = store.find(
    USERS,
    { parent: { $in: spellings(destination._id) }, kind: { $ne: CUSTOMER_KIND } },
    { projection: ACCOUNT_PROJECTION },
  );
  for await (const account of cursor) accounts.set(String(account._id), account as Account);
  const incoming = new Set(arrivals.map((arrival) => arrival._id.toHexString()));
  const sources = new Map<string, { customer: Account; arrived: Account[] }>();
  for (const arrival of arrivals) {
    const account = accounts.get(arrival._id.toHexString());
    if (!account) continue;
    const key = arrival.source._id.toHexString();
    const entry = sources.get(key) ?? {
      customer: { _id: arrival.source._id, username: arrival.source.username, kind: CUSTOMER_KIND },
      arrived: [],
    };
    entry.arrived.push(account);
    sources.set(key, entry);
  }
  const existing = [...accounts.values()].filter((account) => !incoming.has(account._id.toHexString()));
  return findConflicts(
    {
      customer: { _id: destination._id, username: destination.username, kind: CUSTOMER_KIND },
      accounts: existing,
      followUp: false,
    },
    [...sources.values()].map(({ customer, arrived }) => ({
      customer,
      accounts: [],
      arrived,
      followUp: true,
    })),
    false,
  );
}
