import createDebug from 'debug';
import type { ObjectId } from 'mongodb';
import { ConflictError, RuntimeError } from './errors.js';
import { type CustomerRequest, resolveCustomers } from './resolve.js';
import { type MigrationOptions, type Plan, type Step, scanMigration } from './scan.js';
import { type ReferenceMap, USERS } from './schema.js';
import {
  collect,
  type Document,
  type Store,
  type TransactionStore,
  type UpdateResult,
} from './store/types.js';

const log = createDebug('agm:migrate-customer-data');

export interface StepResult extends UpdateResult {
  step: Step;
  durationMs: number;
}

export interface Applied {
  /** The plan that ran: made inside the transaction, on its snapshot. */
  plan: Plan;
  results: StepResult[];
  /** Full original documents, kept in the history so a merge or conversion can be proven and undone. */
  mergedAccounts: { before: Document; survivor: ObjectId }[];
  convertedCustomers: { before: Document }[];
}

export interface ApplyRequest extends CustomerRequest {
  options: MigrationOptions;
  map: ReferenceMap;
  /** A fingerprint from a reviewed preview; the migration stops if the plan is no longer that one. */
  expectPlan?: string;
}

export interface ApplyHooks {
  onStep?: (result: StepResult) => void;
  onAttempt?: (attempt: number) => void;
}

/**
 * One transaction: resolve and scan again on the transaction's snapshot (the data may have changed since
 * the preview, and MongoDB may re-run this callback), then run the plan's updates one after another. Any
 * surprise, including an update matching a different number of documents than the plan said, throws and
 * so rolls everything back.
 */
export async function applyMigration(
  store: Store,
  request: ApplyRequest,
  hooks: ApplyHooks = {},
): Promise<Applied> {
  let attempt = 0;
  return store.transaction(async (tx) => {
    attempt += 1;
    hooks.onAttempt?.(attempt);
    const customers = await resolveCustomers(tx, request);
    const plan = await scanMigration(tx, customers, request.options, request.map, new Date());
    log(
      'plan %s: %d steps, %d conflicts (attempt %d)',
      plan.fingerprint,
      plan.steps.length,
      plan.conflicts.length,
      attempt,
    );
    if (plan.blocked) {
      throw new ConflictError(`Migration aborted due to conflicts (${plan.conflicts.length})`, {
        context: { plan },
      });
    }
    if (request.expectPlan !== undefined && request.expectPlan !== plan.fingerprint) {
      throw new RuntimeError(
        `The plan changed since it was reviewed (expected ${request.expectPlan}, now ${plan.fingerprint}); run --preview again`,
        { context: { plan } },
      );
    }
    const mergedAccounts = await beforeImages(tx, plan, 'mark-merged-account');
    const convertedCustomers = await beforeImages(tx, plan, 'convert-sources');
    const results: StepResult[] = [];
    // One at a time: operations of a transaction must not run concurrently.
    for (const step of plan.steps) {
      const started = Date.now();
      const result = await tx.updateMany(step.collection, step.filter, step.update);
      const stepResult = { step, ...result, durationMs: Date.now() - started };
      if (result.matched !== step.expected) {
        throw new RuntimeError(
          `${describeStep(step)} matched ${result.matched} documents where the plan expected ${step.expected}; rolled back, run --preview again`,
        );
      }
      results.push(stepResult);
      hooks.onStep?.(stepResult);
    }
    return {
      plan,
      results,
      mergedAccounts: mergedAccounts.map((before) => ({ before, survivor: survivorOf(plan, before._id) })),
      convertedCustomers: convertedCustomers.map((before) => ({ before })),
    };
  });
}

async function beforeImages(tx: TransactionStore, plan: Plan, action: Step['action']): Promise<Document[]> {
  const filters = plan.steps.filter((step) => step.action === action).map((step) => step.filter);
  if (filters.length === 0) return [];
  return collect(tx.find(USERS, { $or: filters }, { sort: { _id: 1 } }));
}

function survivorOf(plan: Plan, loser: ObjectId): ObjectId {
  for (const { resolution } of plan.conflicts) {
    if (resolution.action === 'merge' && resolution.loser.equals(loser)) return resolution.survivor;
  }
  throw new Error(`unreachable: merged account ${loser.toHexString()} has no survivor in the plan`);
}

export function describeStep(step: Step): string {
  const target = step.field ? `${step.collection}.${step.field}` : step.collection;
  switch (step.action) {
    case 'repoint-account-refs':
      return `${target}: re-point merged account ${String(step.filter[step.field as string])}`;
    case 'mark-merged-account':
      return `${target}: mark merged account ${String(step.filter._id)} deleted`;
    case 'repoint-customer-refs':
      return `${target}: re-point to destination`;
    case 'deactivate-sources':
      return `${target}: deactivate source customers`;
    case 'convert-sources':
      return `${target}: convert source customers to admins`;
  }
}
