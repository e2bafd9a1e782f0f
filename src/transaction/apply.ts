import createDebug from 'debug';
import type { ObjectId } from 'mongodb';
import { type CustomerRequest, type ResolvedCustomers, resolveCustomers } from '../plan/resolve.js';
import {
  isBlocked,
  type MigrationOptions,
  nothingToDo,
  type Plan,
  type Run,
  type Step,
  scanMigration,
} from '../plan/scan.js';
import { type ReferenceMap, USERS } from '../plan/schema.js';
import { BlockedError, RuntimeError, UsageError } from '../shared/errors.js';
import {
  collect,
  type Document,
  type Store,
  type TransactionStore,
  type UpdateResult,
} from '../store/types.js';
import { type AccountRole, type JournalAccount, type JournalHead, journalMoves } from './journal.js';

const log = createDebug('agm:migrate-customer-data');

export interface StepResult extends UpdateResult {
  step: Step;
  /** The update's own duration. */
  durationMs: number;
  /** The ids journaled before it (re-pointing steps), and how long that took. */
  journal?: { chunks: number; documents: number; durationMs: number };
}

export interface Applied {
  /** The plan that ran: made inside the transaction, on its snapshot. */
  plan: Plan;
  results: StepResult[];
  /** Every account document the migration changed as a whole (sources, merged, converted): before and after. */
  accounts: JournalAccount[];
  journal: { collection: string; chunks: number; documents: number };
}

export interface ApplyRequest extends CustomerRequest {
  options: MigrationOptions;
  map: ReferenceMap;
  run: Run;
  /** A fingerprint from a reviewed preview; the migration stops if the plan is no longer that one. */
  expectPlan?: string;
}

export interface ApplyHooks {
  /** Each step as it starts (its journal, then its update) and as it ends. */
  onStepStart?: (step: Step) => void;
  onStep?: (result: StepResult) => void;
  /** The plan made again inside the transaction, before its steps. */
  onPlanned?: (plan: Plan, durationMs: number) => void;
  onRetry?: (attempt: number) => void;
  onCommit?: () => void;
  signal?: AbortSignal;
}

/**
 * One transaction: resolve and scan again on the transaction's snapshot (the data may have changed since
 * the preview, and MongoDB may re-run this callback), then run the plan's updates one after another, each
 * preceded by the journal of the ids it moves, and last the journal's head. Any surprise, including an update
 * matching a different number of documents than the plan said, throws and so rolls everything back.
 */
export async function applyMigration(
  store: Store,
  request: ApplyRequest,
  hooks: ApplyHooks = {},
): Promise<Applied> {
  const journal = request.map.journalCollection;
  await store.ensureCollections([journal]);
  return store.transaction(
    async (tx) => {
      const planning = Date.now();
      const customers = await changedMeanwhile(() => resolveCustomers(tx, request));
      const plan = await scanMigration(tx, customers, request.options, request.map, request.run);
      hooks.onPlanned?.(plan, Date.now() - planning);
      log('plan %s: %d steps, %d conflicts', plan.fingerprint, plan.steps.length, plan.conflicts.length);
      if (isBlocked(plan)) {
        throw new BlockedError(`Migration aborted: ${plan.blockers.map((b) => b.message).join('; ')}`, {
          context: { plan },
        });
      }
      // Another run moved these sources since this one planned (or it is a re-run): abort, writing nothing.
      if (nothingToDo(plan)) throw new NothingToDo(plan);
      if (request.expectPlan !== undefined && request.expectPlan !== plan.fingerprint) {
        throw new RuntimeError(
          `The plan changed since it was reviewed (expected ${request.expectPlan}, now ${plan.fingerprint}); nothing was committed, run --preview again`,
          { context: { plan } },
        );
      }
      const roles = accountRoles(plan, customers);
      const before = await images(tx, roles);
      const results: StepResult[] = [];
      let chunks = 0;
      let documents = 0;
      // One at a time: operations of a transaction must not run concurrently.
      for (const step of plan.steps) {
        hooks.onStepStart?.(step);
        let journaled: StepResult['journal'];
        if (step.moves) {
          const journaling = Date.now();
          const written = await journalMoves(tx, journal, request.run.id, step, chunks);
          journaled = { ...written, durationMs: Date.now() - journaling };
          chunks += written.chunks;
          documents += written.documents;
        }
        const started = Date.now();
        const result = await tx.updateMany(step.collection, step.filter, step.update);
        if (result.matched !== step.expected) {
          throw new RuntimeError(
            `${describeStep(step)} matched ${result.matched} documents where the plan expected ${step.expected}; nothing was committed, run --preview again`,
          );
        }
        const stepResult: StepResult = {
          step,
          ...result,
          durationMs: Date.now() - started,
          ...(journaled ? { journal: journaled } : {}),
        };
        results.push(stepResult);
        hooks.onStep?.(stepResult);
      }
      const after = await images(tx, roles);
      const accounts = roles.map(({ _id, role }) => ({
        _id,
        role,
        before: imageOf(before, _id),
        after: imageOf(after, _id),
      }));
      await tx.insertMany(journal, [headOf(request, plan, customers, accounts, chunks)]);
      return { plan, results, accounts, journal: { collection: journal, chunks, documents } };
    },
    { signal: hooks.signal, onRetry: hooks.onRetry, onCommit: hooks.onCommit },
  );
}

/**
 * Thrown inside the transaction (so it is aborted, having written nothing) when its plan has nothing left to
 * move: every source was already migrated into the destination, and nothing was left behind.
 */
export class NothingToDo extends Error {
  constructor(readonly plan: Plan) {
    super('nothing to do: these sources were already migrated into the destination');
    this.name = 'NothingToDo';
  }
}

/**
 * The customers were resolved before the transaction; if they no longer resolve inside it (a destination
 * deactivated meanwhile, a customer renamed), that is a run-time failure to record, not an input error.
 */
async function changedMeanwhile<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new RuntimeError(
      `The customers changed while the migration ran (${error.message}); nothing was committed`,
      {
        cause: error,
      },
    );
  }
}

function accountRoles(plan: Plan, { sources }: ResolvedCustomers): { _id: ObjectId; role: AccountRole }[] {
  const sourceRole: AccountRole = plan.options.convertToAdmin ? 'converted' : 'source';
  const merged = plan.conflicts.flatMap(({ resolution }) =>
    resolution.action === 'merge' ? [resolution.loser] : [],
  );
  return [
    ...sources.filter((source) => !source.followUp).map((source) => ({ _id: source._id, role: sourceRole })),
    ...merged.map((_id) => ({ _id, role: 'merged' as const })),
  ];
}

async function images(tx: TransactionStore, roles: { _id: ObjectId }[]): Promise<Document[]> {
  if (roles.length === 0) return [];
  return collect(tx.find(USERS, { _id: { $in: roles.map((role) => role._id) } }));
}

function imageOf(documents: Document[], id: ObjectId): Document {
  const found = documents.find((document) => id.equals(document._id));
  if (!found)
    throw new RuntimeError(
      `account ${id.toHexString()} vanished during the migration; nothing was committed`,
    );
  return found;
}

function headOf(
  request: ApplyRequest,
  plan: Plan,
  customers: ResolvedCustomers,
  accounts: JournalAccount[],
  chunks: number,
): JournalHead {
  return {
    _id: request.run.id,
    type: 'migration',
    status: 'committed',
    startedAt: request.run.now,
    migratedAt: request.run.now,
    sources: customers.sources.map((s) => ({ _id: s._id, username: s.username, followUp: s.followUp })),
    destination: { _id: customers.destination._id, username: customers.destination.username },
    options: plan.options,
    fingerprint: plan.fingerprint,
    map: request.map,
    refs: plan.steps.flatMap((step) =>
      (step.moves ?? []).map((move) => ({
        kind: step.action === 'repoint-customer-refs' ? ('customer' as const) : ('account' as const),
        collection: step.collection,
        field: step.field as string,
        ...move,
      })),
    ),
    chunks,
    accounts,
    expectations: plan.expectations,
  };
}

export function survivorOf(plan: Plan, loser: ObjectId): ObjectId {
  for (const { resolution } of plan.conflicts) {
    if (resolution.action === 'merge' && resolution.loser.equals(loser)) return resolution.survivor;
  }
  throw new Error(`unreachable: merged account ${loser.toHexString()} has no survivor in the plan`);
}

export function describeStep(step: Step): string {
  const target = step.field ? `${step.collection}.${step.field}` : step.collection;
  switch (step.action) {
    case 'repoint-account-refs':
      return `${target}: re-point merged accounts to their survivors`;
    case 'mark-merged-accounts':
      return `${target}: mark merged accounts deleted`;
    case 'repoint-customer-refs':
      return `${target}: re-point to destination`;
    case 'deactivate-sources':
      return `${target}: deactivate source customers`;
    case 'convert-sources':
      return `${target}: convert source customers to admins`;
    case 'mark-destination':
      return `${target}: record the migration on the destination`;
  }
}
