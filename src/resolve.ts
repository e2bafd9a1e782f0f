import { ObjectId } from 'mongodb';
import { UsageError } from './errors.js';
import { CUSTOMER_KIND, USERS } from './schema.js';
import { collect, type Document, type ReadStore } from './store/types.js';

/** The fields of a users document this tool reads. */
export interface Account {
  _id: ObjectId;
  username: string;
  kind: string;
  parent?: ObjectId;
  active?: boolean;
  markedDelete?: boolean;
}

export const ACCOUNT_PROJECTION = { _id: 1, username: 1, kind: 1, parent: 1, active: 1, markedDelete: 1 };

export interface CustomerRequest {
  /** As typed: usernames and/or 24-hex ids, trimmed, in the order given. */
  sources: string[];
  destination: string;
}

export interface ResolvedCustomers {
  sources: Account[];
  destination: Account;
}

const OBJECT_ID = /^[0-9a-fA-F]{24}$/;

/** The application treats a missing markedDelete as "not deleted". */
export function isDeleted(account: Pick<Account, 'markedDelete'>): boolean {
  return account.markedDelete === true;
}

export function describeKind(kind: unknown): string {
  if (kind === CUSTOMER_KIND) return "a customer (kind '1')";
  if (kind === '2') return "an admin account (kind '2')";
  return `a sub-account (kind '${String(kind)}')`;
}

/**
 * Turns the usernames and ids on the command line into customer documents, or says exactly what is wrong
 * with them. Reads only; one query for all tokens.
 */
export async function resolveCustomers(
  store: ReadStore,
  request: CustomerRequest,
): Promise<ResolvedCustomers> {
  const tokens = [...request.sources, request.destination];
  const ids = tokens.filter((token) => OBJECT_ID.test(token)).map((token) => new ObjectId(token));
  const names = tokens.filter((token) => !OBJECT_ID.test(token));
  // $in over plain strings: a token is always a literal, never an operator or a regex.
  const found = (await collect(
    store.find(
      USERS,
      { $or: [{ _id: { $in: ids } }, { username: { $in: names } }] },
      { projection: ACCOUNT_PROJECTION },
    ),
  )) as Account[];

  const lookups = tokens.map((token) => lookup(token, found));
  const sourceLookups = lookups.slice(0, -1);
  const destinationLookup = lookups.at(-1) as Lookup;
  const missing = sourceLookups.filter((entry) => entry.status === 'missing').map((entry) => entry.token);
  if (missing.length > 0) {
    throw new UsageError(
      `Source customer(s) not found: ${missing.join(', ')}; check the usernames/ids (see --help)`,
    );
  }
  if (destinationLookup.status === 'missing') {
    throw new UsageError(`Destination customer not found: ${destinationLookup.token}; check the username/id`);
  }
  const sources = sourceLookups.map((entry) => usable(entry, 'Source'));
  const destination = usable(destinationLookup, 'Destination');

  const seen = new Map<string, string>();
  for (const [index, source] of sources.entries()) {
    const token = request.sources[index] as string;
    const key = source._id.toHexString();
    if (key === destination._id.toHexString()) {
      throw new UsageError(
        `Destination ${request.destination} is also listed in --sources (as ${token}); a customer cannot be merged into itself`,
      );
    }
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new UsageError(
        `Customer ${source.username} (${key}) is given twice in --sources (as ${earlier} and ${token}); list it once`,
      );
    }
    seen.set(key, token);
  }
  return { sources, destination };
}

type Lookup =
  | { token: string; status: 'missing' }
  | { token: string; status: 'found'; account: Account }
  | { token: string; status: 'ambiguous'; accounts: Account[] }
  | { token: string; status: 'not-customer'; account: Account };

function lookup(token: string, found: Account[]): Lookup {
  if (OBJECT_ID.test(token)) {
    const account = found.find((candidate) => candidate._id.toHexString() === token.toLowerCase());
    if (!account) return { token, status: 'missing' };
    return account.kind === CUSTOMER_KIND
      ? { token, status: 'found', account }
      : { token, status: 'not-customer', account };
  }
  const named = found.filter((candidate) => candidate.username === token);
  const customers = named.filter((candidate) => candidate.kind === CUSTOMER_KIND);
  if (customers.length === 1) return { token, status: 'found', account: customers[0] as Account };
  if (customers.length > 1) return { token, status: 'ambiguous', accounts: customers };
  if (named.length > 0) return { token, status: 'not-customer', account: named[0] as Account };
  return { token, status: 'missing' };
}

function usable(entry: Lookup, role: 'Source' | 'Destination'): Account {
  switch (entry.status) {
    case 'missing':
      throw new Error('unreachable: missing customers are reported first');
    case 'ambiguous':
      throw new UsageError(
        `${role} ${entry.token} matches ${entry.accounts.length} customers (${entry.accounts.map((a) => a._id.toHexString()).join(', ')}); give the id instead`,
      );
    case 'not-customer':
      throw new UsageError(
        `${role} ${entry.token} is not a customer: it is ${describeKind(entry.account.kind)}${ownerText(entry.account)}; give a kind '1' customer`,
      );
    case 'found':
      if (isDeleted(entry.account)) {
        throw new UsageError(
          `${role} customer ${entry.account.username} (${entry.account._id.toHexString()}) is already deactivated (markedDelete: true); choose an active customer`,
        );
      }
      return entry.account;
  }
}

function ownerText(account: Document): string {
  return account.parent instanceof ObjectId ? ` under customer ${account.parent.toHexString()}` : '';
}
