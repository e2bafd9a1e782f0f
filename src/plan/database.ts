import { UsageError } from '../shared/errors.js';
import type { ReadOnlyStore } from '../store/types.js';
import { USERS } from './schema.js';

/**
 * On a server, a database that does not exist reads as an empty one: a typo in the URI's database name would
 * otherwise be reported as "customer not found" (or "no journal entry"). Without a users collection there is no
 * customer to find, so the database itself is named.
 */
export async function checkDatabase(store: ReadOnlyStore): Promise<void> {
  if ((await store.listCollections()).includes(USERS)) return;
  throw new UsageError(
    `${store.description} has no ${USERS} collection, so no customers: check the database name (for a server, the path of the URI: mongodb://host/agmission; a database that does not exist reads as empty)`,
  );
}
