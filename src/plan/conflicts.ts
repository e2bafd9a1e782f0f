import type { ObjectId } from 'mongodb';
import { type Account, isDeleted } from './resolve.js';

export interface ConflictAccount {
  _id: ObjectId;
  username: string;
  kind: string;
  /** The customer the account belongs to before the migration. */
  owner: { _id: ObjectId; username: string };
  /** A source customer that --convert-to-admin turns into an admin; never merged away. */
  convertedCustomer: boolean;
}

export type Resolution =
  | { action: 'merge'; survivor: ObjectId; loser: ObjectId }
  | { action: 'block'; reason: string };

export interface Conflict {
  username: string;
  incoming: ConflictAccount;
  existing: ConflictAccount;
  /** What --merge-conflicts does with this conflict (shown whether or not the flag is given). */
  resolution: Resolution;
}

export interface Tree {
  customer: Account;
  /** Every account whose parent is this customer (as an ObjectId or a hex string), deleted or not. */
  accounts: Account[];
  /** A source already migrated into the destination: its customer document is not moved again. */
  followUp: boolean;
  /**
   * Accounts an earlier migration brought under the destination from this source (the customer itself when it
   * was converted to an admin): they arrived there, so they are checked as incoming, not as the destination's.
   */
  arrived?: Account[];
}

/** Usernames are compared as the application compares them for uniqueness: trimmed, case-insensitive. */
export function usernameKey(username: unknown): string {
  return String(username ?? '')
    .trim()
    .toLowerCase();
}

/**
 * Every account that would end up under the destination is checked against the accounts already there (the
 * destination's own username counts) and against those that arrived from earlier sources. The first holder
 * of a username keeps it, which makes the survivor of a merge deterministic: the destination's account,
 * else the account of the source listed first. Two accounts of one source already coexist under one parent,
 * so they are not a new conflict. Soft-deleted accounts never conflict.
 */
export function findConflicts(destination: Tree, sources: Tree[], convertToAdmin: boolean): Conflict[] {
  const holders = new Map<string, ConflictAccount & { tree: Tree }>();
  const claim = (account: Account, tree: Tree, convertedCustomer: boolean) => {
    const entry = { ...summary(account, tree), convertedCustomer, tree };
    const key = usernameKey(account.username);
    const holder = holders.get(key);
    if (!holder) {
      holders.set(key, entry);
      return undefined;
    }
    const sameTree = holder.tree === tree && !holder.convertedCustomer && !convertedCustomer;
    return sameTree ? undefined : conflictBetween(entry, holder);
  };

  claim(destination.customer, destination, false);
  for (const account of live(destination.accounts)) claim(account, destination, false);

  const conflicts: Conflict[] = [];
  for (const source of sources) {
    // A follow-up's converted customer already sits under the destination, where it was checked.
    const incoming =
      convertToAdmin && !source.followUp ? [{ account: source.customer, converted: true }] : [];
    for (const account of live(source.arrived ?? [])) {
      incoming.push({ account, converted: account._id.equals(source.customer._id) });
    }
    for (const account of live(source.accounts)) incoming.push({ account, converted: false });
    for (const { account, converted } of incoming) {
      const conflict = claim(account, source, converted);
      if (conflict) conflicts.push(conflict);
    }
  }
  return conflicts;
}

function live(accounts: Account[]): Account[] {
  return accounts.filter((account) => !isDeleted(account));
}

function summary(account: Account, tree: Tree): ConflictAccount {
  return {
    _id: account._id,
    username: account.username,
    kind: account.kind,
    owner: { _id: tree.customer._id, username: tree.customer.username },
    convertedCustomer: false,
  };
}

function conflictBetween(incoming: ConflictAccount, existing: ConflictAccount): Conflict {
  return {
    username: incoming.username,
    incoming: strip(incoming),
    existing: strip(existing),
    resolution: resolve(incoming, existing),
  };
}

function strip({ _id, username, kind, owner, convertedCustomer }: ConflictAccount): ConflictAccount {
  return { _id, username, kind, owner, convertedCustomer };
}

function resolve(incoming: ConflictAccount, existing: ConflictAccount): Resolution {
  if (incoming.convertedCustomer || existing.convertedCustomer) {
    const customer = incoming.convertedCustomer ? incoming : existing;
    return {
      action: 'block',
      reason: `${customer.username} is a source customer being converted to an admin and is never merged away; rename one of the two accounts first`,
    };
  }
  if (incoming.kind !== existing.kind) {
    return {
      action: 'block',
      reason: `different kinds ('${incoming.kind}' vs '${existing.kind}') cannot be merged; rename one of the two accounts first`,
    };
  }
  return { action: 'merge', survivor: existing._id, loser: incoming._id };
}
