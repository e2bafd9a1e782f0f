import { scalarFilter } from '../plan/scan.js';
import { USERS } from '../plan/schema.js';
import { BlockedError, RuntimeError } from '../shared/errors.js';
import type { Store, TransactionOptions, TransactionStore, UpdateResult } from '../store/types.js';
import { chunksOf } from './journal.js';
import { planRollback, type RollbackPlan } from './rollback-plan.js';

export interface Restored {
  /** The plan that ran: made inside the transaction, on its snapshot. */
  plan: RollbackPlan;
  /** Per collection.field: documents whose reference went back. */
  refs: Record<string, UpdateResult>;
  accounts: number;
  documentsModified: number;
}

export interface RestoreRequest {
  journal: string;
  migrationId: string;
  rollbackId: string;
  where: string;
  now: Date;
}

/**
 * One transaction: plan again on the transaction's snapshot (drift included), then put every journaled
 * reference back, every account document back to its before-image, take the migration off the destination,
 * and mark the journal entry rolled back. Each update must match exactly what the journal says.
 */
export async function restoreMigration(
  store: Store,
  request: RestoreRequest,
  options: TransactionOptions = {},
): Promise<Restored> {
  const { journal, migrationId } = request;
  return store.transaction(async (tx) => {
    const plan = await planRollback(tx, journal, migrationId, request.where);
    if (plan.blockers.length > 0) {
      throw new BlockedError(`Rollback refused: ${plan.blockers.join('; ')}`, {
        context: { rollbackPlan: plan },
      });
    }
    const refs: Record<string, UpdateResult> = {};
    let documentsModified = 0;
    const expect = (what: string, result: UpdateResult, expected: number) => {
      if (result.matched !== expected) {
        throw new RuntimeError(
          `${what} matched ${result.matched} where the journal says ${expected}; nothing was committed`,
        );
      }
      documentsModified += result.modified;
    };
    for await (const chunk of chunksOf(tx, journal, migrationId)) {
      const result = await tx.updateMany(
        chunk.collection,
        { _id: { $in: chunk.ids }, ...scalarFilter(chunk.field, [chunk.to]) },
        { $set: { [chunk.field]: chunk.from } },
      );
      expect(`${chunk.collection}.${chunk.field}`, result, chunk.ids.length);
      const key = `${chunk.collection}.${chunk.field}`;
      const entry = refs[key] ?? { matched: 0, modified: 0 };
      refs[key] = { matched: entry.matched + result.matched, modified: entry.modified + result.modified };
    }
    for (const account of plan.accounts) {
      expect(
        `account ${account._id.toHexString()}`,
        await tx.replaceOne(USERS, { _id: account._id }, account.before),
        1,
      );
    }
    await unmarkDestination(tx, plan, migrationId, expect);
    const marked = await tx.updateMany(
      journal,
      { _id: migrationId, status: 'committed' },
      { $set: { status: 'rolled_back', rolledBackAt: request.now, rolledBackBy: request.rollbackId } },
    );
    if (marked.matched !== 1)
      throw new RuntimeError(`journal entry ${migrationId} changed meanwhile; nothing was committed`);
    // The rollback's own journal entry: what settles its commit if the answer to it is lost.
    await tx.insertMany(journal, [
      { _id: request.rollbackId, type: 'rollback', migration: migrationId, at: request.now },
    ]);
    return { plan, refs, accounts: plan.accounts.length, documentsModified };
  }, options);
}

/** Pull exactly this migration's id; a field the migration created goes away with its last entry. */
async function unmarkDestination(
  tx: TransactionStore,
  plan: RollbackPlan,
  migrationId: string,
  expect: (what: string, result: UpdateResult, expected: number) => void,
): Promise<void> {
  const destination = plan.head.destination._id;
  expect(
    'the destination',
    await tx.updateMany(USERS, { _id: destination }, { $pull: { migrationsReceived: migrationId } }),
    1,
  );
  await tx.updateMany(
    USERS,
    { _id: destination, migrationsReceived: { $size: 0 } },
    { $unset: { migrationsReceived: '' } },
  );
}
