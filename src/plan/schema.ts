import { readFile } from 'node:fs/promises';
import { UsageError } from '../shared/errors.js';

/**
 * Which collections and fields point at a customer and which point at an account. This is data, not code:
 * adding a collection to the migration is one line here or in a `--config` file.
 */
export interface ReferenceMap {
  /** Fields holding a customer's _id; re-pointed from every source to the destination. */
  customerRefs: Record<string, string[]>;
  /** Fields holding an account's _id; re-pointed from a merged account to its survivor (--merge-conflicts). */
  accountRefs: Record<string, string[]>;
  /** Collections that --skip-invoices leaves untouched. */
  invoiceCollections: string[];
  /** Where each migration's journal is written, inside its transaction (what rollback and verify read). */
  journalCollection: string;
  /**
   * Words that mark a field as a credential: its value is masked in the history file's before-images (the
   * journal keeps the whole document, under the database's access control).
   */
  secretFields: string[];
}

export const DEFAULT_REFERENCE_MAP: ReferenceMap = {
  customerRefs: {
    users: ['parent'],
    jobs: ['byPuid'],
    invoices: ['customer'],
  },
  accountRefs: {
    jobs: ['client', 'pilot'],
    invoices: ['client'],
  },
  invoiceCollections: ['invoices'],
  journalCollection: 'customer_migrations',
  secretFields: ['password', 'hash', 'salt', 'token', 'secret', 'key'],
};

/** The accounts collection and its fields are the AgMission schema itself, not configuration. */
export const USERS = 'users';

export const CUSTOMER_KIND = '1';
export const ADMIN_KIND = '2';

export interface FieldRef {
  collection: string;
  field: string;
  /** True when the collection is one that --skip-invoices leaves alone. */
  invoice: boolean;
}

/** Every collection the map names: what a snapshot must contain. */
export function mappedCollections(map: ReferenceMap): string[] {
  return [...new Set([USERS, ...Object.keys(map.customerRefs), ...Object.keys(map.accountRefs)])];
}

export function fieldRefs(refs: Record<string, string[]>, map: ReferenceMap): FieldRef[] {
  return Object.entries(refs).flatMap(([collection, fields]) =>
    fields.map((field) => ({ collection, field, invoice: map.invoiceCollections.includes(collection) })),
  );
}

export async function loadReferenceMap(file: string | undefined): Promise<ReferenceMap> {
  if (file === undefined) return DEFAULT_REFERENCE_MAP;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new UsageError(
      `Cannot read --config ${file}: ${(error as Error).message}; pass a JSON reference map`,
      {
        cause: error,
      },
    );
  }
  return validateReferenceMap(parsed, file);
}

function validateReferenceMap(value: unknown, source: string): ReferenceMap {
  const fail = (problem: string): never => {
    throw new UsageError(`Invalid reference map in ${source}: ${problem}; see "Reference map" in the README`);
  };
  if (!isRecord(value)) return fail('expected a JSON object');
  const known = new Set(Object.keys(DEFAULT_REFERENCE_MAP));
  const unknown = Object.keys(value).filter((key) => !known.has(key));
  if (unknown.length > 0) fail(`unknown key(s) ${unknown.join(', ')}`);
  const customerRefs = refsOf(value.customerRefs ?? DEFAULT_REFERENCE_MAP.customerRefs, 'customerRefs', fail);
  const accountRefs = refsOf(value.accountRefs ?? DEFAULT_REFERENCE_MAP.accountRefs, 'accountRefs', fail);
  const invoiceCollections = value.invoiceCollections ?? DEFAULT_REFERENCE_MAP.invoiceCollections;
  if (!Array.isArray(invoiceCollections) || !invoiceCollections.every(isName)) {
    fail('invoiceCollections must be an array of collection names');
  }
  // Without users.parent the sub-accounts would stay under a deactivated source.
  if (!customerRefs[USERS]?.includes('parent')) fail('customerRefs.users must include "parent"');
  const journalCollection = value.journalCollection ?? DEFAULT_REFERENCE_MAP.journalCollection;
  if (!isName(journalCollection) || journalCollection in customerRefs || journalCollection in accountRefs) {
    fail('journalCollection must be a collection name of its own (not a mapped collection)');
  }
  const secretFields = value.secretFields ?? DEFAULT_REFERENCE_MAP.secretFields;
  if (!Array.isArray(secretFields) || !secretFields.every(isName)) {
    fail('secretFields must be an array of words (e.g. "password", "token")');
  }
  return {
    customerRefs,
    accountRefs,
    invoiceCollections: invoiceCollections as string[],
    journalCollection: journalCollection as string,
    secretFields: (secretFields as string[]).map((word) => word.toLowerCase()),
  };
}

function refsOf(value: unknown, key: string, fail: (problem: string) => never): Record<string, string[]> {
  if (!isRecord(value)) return fail(`${key} must map collection names to arrays of field names`);
  for (const [collection, fields] of Object.entries(value)) {
    if (!isName(collection) || !Array.isArray(fields) || fields.length === 0 || !fields.every(isName)) {
      fail(`${key}.${collection} must be a non-empty array of field names`);
    }
    if ((fields as string[]).some((field) => field.startsWith('$') || field === '_id')) {
      fail(`${key}.${collection} may not name _id or a $-field`);
    }
  }
  return value as Record<string, string[]>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && !value.startsWith('$');
}
