import { ObjectId } from 'mongodb';
import { UsageError } from '../shared/errors.js';
import { plain } from '../shared/plain.js';
import { collect, type Document, type ReadStore } from '../store/types.js';
import { ADMIN_KIND, CUSTOMER_KIND, USERS } from './schema.js';

/** The fields of a users document this tool reads. */
export interface Account {
  _id: ObjectId;
  username: string;
  kind: string;
  /** An ObjectId, or a hex string in legacy documents. */
  parent?: ObjectId | string;
  active?: boolean;
  markedDelete?: boolean;
  migratedTo?: ObjectId;
  convertedFrom?: string;
}

export const ACCOUNT_PROJECTION = {
  _id: 1,
  username: 1,
  kind: 1,
  parent: 1,
  active: 1,
  markedDelete: 1,
  migratedTo: 1,
  convertedFrom: 1,
};

export interface CustomerRequest {
  /** As typed: usernames and/or 24-hex ids, trimmed, in the order given. */
  sources: string[];
  destination: string;
}

export interface Source extends Account {
  /**
   * Already migrated into this same destination by an earlier run: this run only moves what was left behind
   * (documents created for it while that run was going on), and leaves the customer document as it is.
   */
  followUp: boolean;
}

export interface ResolvedCustomers {
  sources: Source[];
  destination: Account;
}

const OBJECT_ID = /^[0-9a-fA-F]{24}$/;

/** The application treats a missing markedDelete as "not deleted". */
export function isDeleted(account: Pick<Account, 'markedDelete'>): boolean {
  return account.markedDelete === true;
}

/** Kinds by the guide's names ('1' customer, '2' admin); the others are sub-accounts. */
export function describeKind(stored: unknown): string {
  // Reads keep BSON number types: an Int32 1 is still "a number" to the operator.
  const kind = plain(stored);
  if (typeof kind !== 'string') {
    const hint = String(kind) === CUSTOMER_KIND ? `; customers have the string '${CUSTOMER_KIND}'` : '';
    return `an account whose kind is ${JSON.stringify(kind ?? null)}, stored as a ${kind === null || kind === undefined ? 'missing value' : typeof kind} rather than a string${hint}`;
  }
  if (kind === CUSTOMER_KIND) return "a customer (kind '1')";
  if (kind === ADMIN_KIND) return "an admin account (kind '2')";
  return `a sub-account (kind '${kind}')`;
}

/** A username as it may be shown: quoted and escaped when spaces or invisible characters would hide. */
export function showName(name: unknown): string {
  const text = String(name);
  return /^\s|\s$|[\p{C}\p{Z}]/u.test(text) ? quoteName(text) : text;
}

/** Quoted, with invisible characters (zero-width, no-break spaces, controls) written as escapes. */
export function quoteName(name: unknown): string {
  return JSON.stringify(String(name)).replace(/[\p{Cf}\p{Z}]/gu, (c) =>
    c === ' ' ? c : `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Turns the usernames and ids on the command line into customer documents, or says exactly what is wrong
 * with them. Reads only; one query for all tokens (and, when some are missing, one for suggestions).
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
  await reportMissing(store, sourceLookups, destinationLookup);
  const destination = usable(destinationLookup, 'Destination');
  const sources = sourceLookups.map((entry) => usableSource(entry, destination));

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
        `Customer ${showName(source.username)} (${key}) is given twice in --sources (as ${earlier} and ${token}); list it once`,
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
  // A customer converted to an admin by an earlier run is found by its username for a follow-up run.
  const converted = named.filter(isConvertedCustomer);
  if (converted.length === 1) return { token, status: 'found', account: converted[0] as Account };
  if (named.length > 0) return { token, status: 'not-customer', account: named[0] as Account };
  return { token, status: 'missing' };
}

function isConvertedCustomer(account: Account): boolean {
  return account.kind === ADMIN_KIND && account.convertedFrom === CUSTOMER_KIND;
}

/** Every missing token in one message, each with what the operator probably meant. */
async function reportMissing(store: ReadStore, sources: Lookup[], destination: Lookup): Promise<void> {
  const missingSources = sources.filter((entry) => entry.status === 'missing').map((entry) => entry.token);
  const missingDestination = destination.status === 'missing' ? destination.token : undefined;
  if (missingSources.length === 0 && missingDestination === undefined) return;
  const customers = (await collect(
    store.find(USERS, { kind: CUSTOMER_KIND }, { projection: { username: 1 } }),
  )) as Account[];
  const describe = (token: string) => `${showName(token)}${suggestionText(token, customers)}`;
  const parts: string[] = [];
  if (missingSources.length > 0)
    parts.push(`Source customer(s) not found: ${missingSources.map(describe).join(', ')}`);
  if (missingDestination !== undefined)
    parts.push(`Destination customer not found: ${describe(missingDestination)}`);
  throw new UsageError(`${parts.join('; ')}; check the usernames/ids (see --help)`);
}

/** Names that differ only in case or surrounding spaces first, then close spellings (edit distance). */
function suggestionText(token: string, customers: Account[]): string {
  if (OBJECT_ID.test(token)) return '';
  const wanted = token.trim().toLowerCase();
  const names = [...new Set(customers.map((customer) => String(customer.username)))];
  const same = names.filter((name) => name !== token && name.trim().toLowerCase() === wanted);
  const close = names
    .filter((name) => !same.includes(name) && name !== token)
    .map((name) => ({ name, distance: editDistance(wanted, name.trim().toLowerCase()) }))
    .filter(({ distance }) => distance <= Math.max(1, Math.floor(wanted.length / 4)))
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .map(({ name }) => name);
  const suggestions = [...same, ...close].slice(0, 3);
  return suggestions.length === 0 ? '' : ` (did you mean ${suggestions.map(showName).join(' or ')}?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

function usable(entry: Lookup, role: 'Source' | 'Destination'): Account {
  switch (entry.status) {
    case 'missing':
      throw new Error('unreachable: missing customers are reported first');
    case 'ambiguous':
      throw new UsageError(
        `${role} ${showName(entry.token)} matches ${entry.accounts.length} customers (${entry.accounts.map((a) => a._id.toHexString()).join(', ')}); give the id instead`,
      );
    case 'not-customer':
      throw new UsageError(
        `${role} ${showName(entry.token)} is not a customer: it is ${describeKind(entry.account.kind)}${ownerText(entry.account)}; give a kind '1' customer`,
      );
    case 'found':
      if (isDeleted(entry.account) || isConvertedCustomer(entry.account)) {
        throw new UsageError(
          `${role} customer ${showName(entry.account.username)} (${entry.account._id.toHexString()}) is already ${isConvertedCustomer(entry.account) ? 'converted to an admin' : 'deactivated (markedDelete: true)'}${migratedText(entry.account)}; choose an active customer`,
        );
      }
      return entry.account;
  }
}

/** A source already migrated into this destination is accepted: the run moves only what is left. */
function usableSource(entry: Lookup, destination: Account): Source {
  if (entry.status === 'found' && destination._id.equals(entry.account.migratedTo)) {
    return { ...entry.account, followUp: true };
  }
  return { ...usable(entry, 'Source'), followUp: false };
}

function migratedText(account: Account): string {
  return account.migratedTo instanceof ObjectId
    ? ` by a migration into ${account.migratedTo.toHexString()}`
    : '';
}

function ownerText(account: Document): string {
  return account.parent instanceof ObjectId || typeof account.parent === 'string'
    ? ` under customer ${String(account.parent)}`
    : '';
}
