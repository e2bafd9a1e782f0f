import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Document, ObjectId } from 'mongodb';
import { PROJECT_ROOT } from '../../src/cli/options.js';
import { parseSnapshot } from '../../src/store/snapshot.js';

export type Collections = Map<string, Document[]>;

export const DEMO_FILE = join(PROJECT_ROOT, 'examples', 'agmission-demo.json');

/** The guide's customers as they stand in examples/agmission-demo.json. */
export const IDS = {
  acme_aviation: '507f1f77bcf86cd799439011',
  regional_ag: '507f1f77bcf86cd799439012',
  consolidated_ag: '507f191e810c19729de860ea',
  acme_corporate: '5f0c0a000000000000000100',
  acme_west: '5f0c0a000000000000000101',
  acme_east: '5f0c0a000000000000000102',
  acme_south: '5f0c0a000000000000000103',
  valley_sprayers: '60d5ec49f1a2b3c4d5e6f701',
  old_farms: '5a1b2c3d4e5f60718293a4b5',
  /** acme_aviation's john_farmer (kind 3), which clashes with consolidated_ag's John_Farmer. */
  john_farmer: '507f1f77bcf86cd799439015',
  John_Farmer: '5593f2609e3c7a51d23a1c09',
  /** acme_aviation's pilot_mike (kind 5) and consolidated_ag's. */
  pilot_mike_source: '5c867ca09e3c7a51d23a1c01',
  pilot_mike_destination: '57d659789e3c7a51d23a1c0a',
} as const;

export function demoData(): Collections {
  return parseSnapshot(readFileSync(DEMO_FILE, 'utf8'), DEMO_FILE);
}

export function oid(hex: string): ObjectId {
  return new ObjectId(hex);
}

/** A fresh id per call, readable in failures thanks to the counter in its last bytes. */
let counter = 0;
export function newId(): ObjectId {
  counter += 1;
  return new ObjectId(`65a000000000000000${counter.toString(16).padStart(6, '0')}`);
}

interface AccountSpec {
  username: string;
  kind: string;
  markedDelete?: boolean;
}

/**
 * A small data set built for one test: customers with the given sub-accounts, and one job and one invoice
 * per customer and per kind '3'/'5' account so every reference field has something to move.
 */
export function buildData(customers: Record<string, AccountSpec[]>): {
  data: Collections;
  ids: Record<string, ObjectId>;
} {
  const ids: Record<string, ObjectId> = {};
  const users: Document[] = [];
  const jobs: Document[] = [];
  const invoices: Document[] = [];
  for (const [customer, accounts] of Object.entries(customers)) {
    const customerId = newId();
    ids[customer] = customerId;
    users.push({ _id: customerId, username: customer, kind: '1', active: true, markedDelete: false });
    for (const account of accounts) {
      const accountId = newId();
      ids[`${customer}/${account.username}`] = accountId;
      users.push({
        _id: accountId,
        username: account.username,
        kind: account.kind,
        parent: customerId,
        active: account.markedDelete !== true,
        markedDelete: account.markedDelete === true,
      });
      if (account.kind === '3') {
        jobs.push({ _id: newId(), byPuid: customerId, client: accountId });
        invoices.push({ _id: newId(), customer: customerId, client: accountId });
      }
      if (account.kind === '5') jobs.push({ _id: newId(), byPuid: customerId, pilot: accountId });
    }
    jobs.push({ _id: newId(), byPuid: customerId });
  }
  return {
    data: new Map([
      ['users', users],
      ['jobs', jobs],
      ['invoices', invoices],
    ]),
    ids,
  };
}
