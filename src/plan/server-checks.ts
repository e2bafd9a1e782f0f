import type { ObjectId } from 'mongodb';
import type { Document, IndexInfo, ReadStore, ServerFacts } from '../store/types.js';
import type { Blocker, FieldScan, Plan } from './scan.js';
import { scalarFilter, spellings } from './scan.js';
import { ADMIN_KIND, USERS } from './schema.js';
import { assessSize, PHASE_SHARE, percent, type SizeAssessment } from './transaction-size.js';

/**
 * Where the server's own facts (read outside the transaction: listIndexes is not allowed inside one) change
 * what the plan may do: indexes, unique indexes, shard keys, and whether the transaction fits the server's
 * cache and time limits (transaction-size.ts).
 */
export interface Assessment {
  warnings: string[];
  blockers: Blocker[];
  size: SizeAssessment;
}

export async function assessPlan(
  store: ReadStore,
  plan: Plan,
  facts: ServerFacts,
  journal: string,
): Promise<Assessment> {
  const moved = plan.fields.filter((f) => !f.skipped && f.moves.length > 0);
  const size = assessSize(plan, facts);
  const warnings = [
    ...facts.unknown.map((what) => `Could not read ${what}; the checks that need it were skipped`),
    ...sizeWarnings(size),
  ];
  if (facts.indexes) warnings.push(...unindexed(plan.fields, facts.indexes));
  if (facts.indexes && !guardsUsernames(facts.indexes[USERS] ?? [])) warnings.push(usernameIndexAdvice(plan));
  const blockers = [...shardKeyBlockers(moved, facts), ...journalShardKey(journal, facts)];
  if (facts.indexes) blockers.push(...(await uniqueIndexBlockers(store, plan, facts.indexes)));
  return { warnings, blockers, size };
}

const LIMIT_NAMES = { cache: 'cache limit', time: 'time limit' } as const;

/** What to change when one source alone is too much for one transaction. */
const ADVICE = {
  cache:
    "raise the WiredTiger cache (storage.wiredTiger.engineConfig.cacheSizeGB) or, for the maintenance window, its eviction triggers (db.adminCommand({ setParameter: 1, wiredTigerEngineRuntimeConfig: 'eviction_dirty_trigger=30,eviction_updates_trigger=15' })), and run it when the workload dirties little",
  time: 'for the maintenance window raise transactionLifetimeLimitSeconds (db.adminCommand({ setParameter: 1, transactionLifetimeLimitSeconds: 300 }), on every shard member), and index the reference fields',
} as const;

function sizeWarnings(size: SizeAssessment): string[] {
  const warnings: string[] = [];
  if (size.over) {
    const what = `The transaction would exceed the ${LIMIT_NAMES[size.binding.name]} (${percent(size.binding.share)} of it) and be aborted`;
    warnings.push(
      size.phases.length > 1
        ? `${what}: migrate in ${size.phases.length} phases (below), each within ${percent(PHASE_SHARE)} of every limit`
        : `${what}: migrate fewer sources at a time`,
    );
  }
  for (const source of size.alone) {
    for (const [name, share] of Object.entries(source.shares)) {
      if (share <= 1) continue;
      const limit = name as keyof typeof ADVICE;
      warnings.push(
        `${source.username} alone exceeds the ${LIMIT_NAMES[limit]} (${percent(share)} of it), so no phase can hold it: ${ADVICE[limit]}`,
      );
    }
  }
  return warnings;
}

/**
 * The fence that settles an unknown commit relies on `_id` being unique across the whole journal collection,
 * which a sharded collection guarantees only when it is sharded on `_id`.
 */
function journalShardKey(journal: string, facts: ServerFacts): Blocker[] {
  const key = facts.shardKeys[journal];
  if (!key || (Object.keys(key).length === 1 && '_id' in key)) return [];
  return [
    {
      kind: 'shard-key',
      message: `the journal collection ${journal} is sharded on ${JSON.stringify(key)}: _id is then unique only per shard, and the fence that settles an unknown commit would prove nothing; use a journal collection that is unsharded or sharded on { _id: 1 } or { _id: "hashed" } (journalCollection in --config)`,
    },
  ];
}

function startsWith(index: IndexInfo, field: string): boolean {
  return Object.keys(index.key)[0] === field;
}

/** Every count and update inside the 60 s transaction scans the collection when nothing indexes the field. */
function unindexed(fields: FieldScan[], indexes: Record<string, IndexInfo[]>): string[] {
  return fields
    .filter((f) => !f.skipped && !(indexes[f.collection] ?? []).some((index) => startsWith(index, f.field)))
    .map(
      (f) =>
        `${f.collection}.${f.field} has no index starting with it: each count and update in the transaction scans the whole collection; create one first: db.${f.collection}.createIndex({ ${f.field}: 1 })`,
    );
}

/** A unique index on usernames, alone or per parent, makes the server refuse a duplicate itself. */
function guardsUsernames(indexes: IndexInfo[]): boolean {
  return indexes.some((index) => {
    const keys = Object.keys(index.key);
    return (
      index.unique === true &&
      keys.includes('username') &&
      keys.every((k) => k === 'username' || k === 'parent')
    );
  });
}

/**
 * The conflict check reads the usernames under the destination when the migration starts; an account the
 * application creates there meanwhile is seen only after the commit (reported then). Only the server can refuse
 * it in time.
 */
function usernameIndexAdvice(plan: Plan): string {
  return `No unique index guards usernames under a customer: an account the application creates under ${plan.destination.username} while the migration runs can take the username of one moving in (the tool checks again after the commit and warns, but only the server can refuse it). Recommended, before the window: db.users.createIndex({ parent: 1, username: 1 }, { unique: true, partialFilterExpression: { markedDelete: false }, collation: { locale: 'en', strength: 2 } }) (partial on live accounts; an account without markedDelete is not covered: set it to false; the build fails while two live accounts under one customer share a username: rename one first)`;
}

/** updateMany cannot change a shard key field (only single-document updates with the full key can). */
function shardKeyBlockers(moved: FieldScan[], facts: ServerFacts): Blocker[] {
  return moved
    .filter((f) => Object.keys(facts.shardKeys[f.collection] ?? {}).some((key) => key === f.field))
    .map((f) => ({
      kind: 'shard-key' as const,
      message: `${f.collection}.${f.field} is part of the shard key of ${f.collection}; a multi-document update cannot change it: move those documents by another route first`,
    }));
}

/**
 * After the migration every moved document holds the destination in its field, next to the destination's own:
 * a unique index over that field and others (users: parent + username) fails if two of them then share a key.
 * One aggregate per such index takes the documents under the destination and those moving there, makes them
 * what the migration leaves (the plan's own re-pointing updates; merged accounts soft-deleted; converted
 * customers as admins under the destination), then keeps those the index holds and groups them by its key as
 * the server does:
 * - a partial index holds the documents matching its filter, evaluated on that result (`$and` with ours: its
 *   filter may name the moved field too);
 * - a missing key field is indexed as null; `sparse` leaves a document out only when every key field is missing,
 *   and the moved field is always there, so it leaves none of these out;
 * - strings compare by the index's collation.
 */
async function uniqueIndexBlockers(
  store: ReadStore,
  plan: Plan,
  indexes: Record<string, IndexInfo[]>,
): Promise<Blocker[]> {
  const blockers: Blocker[] = [];
  const joining = (f: FieldScan) =>
    f.moves.length > 0 || (f.collection === USERS && f.field === 'parent' && convertedOf(plan).length > 0);
  for (const scanned of plan.fields.filter((f) => f.kind === 'customer' && !f.skipped && joining(f))) {
    for (const index of indexes[scanned.collection] ?? []) {
      const keys = Object.keys(index.key);
      if (!index.unique || !keys.includes(scanned.field)) continue;
      const pipeline = [
        ...afterMigration(plan, scanned),
        ...(index.partialFilterExpression ? [{ $match: index.partialFilterExpression }] : []),
        {
          $group: {
            _id: Object.fromEntries(keys.map((key, i) => [`k${i}`, { $ifNull: [`$${key}`, null] }])),
            n: { $sum: 1 },
          },
        },
        { $match: { n: { $gt: 1 } } },
        { $limit: 3 },
      ];
      const clashes: string[] = [];
      for await (const group of store.aggregate(
        scanned.collection,
        pipeline,
        index.collation ? { collation: index.collation } : {},
      )) {
        clashes.push(
          keys
            .flatMap((key, i) =>
              key === scanned.field ? [] : [`${key}: ${JSON.stringify(group._id[`k${i}`] ?? null)}`],
            )
            .join(', '),
        );
      }
      if (clashes.length > 0) {
        blockers.push({
          kind: 'unique-index',
          message: `unique index ${index.name} on ${scanned.collection} would be violated under the destination (${clashes.join('; ')}); rename or remove those duplicates first`,
        });
      }
    }
  }
  return blockers;
}

/** Source customers that become admins under the destination (their `parent` is set to it). */
function convertedOf(plan: Plan): ObjectId[] {
  if (!plan.options.convertToAdmin) return [];
  return plan.sources.filter((source) => !source.followUp).map((source) => source._id);
}

/**
 * Stages that turn the documents of a collection under the destination, and those moving there, into what the
 * migration leaves. The re-pointing updates are the plan's own (pipeline updates map only the values they move).
 */
function afterMigration(plan: Plan, scanned: FieldScan): Document[] {
  const destination = plan.destination._id;
  const values = [...scanned.moves.map((move) => move.from), ...spellings(destination)];
  const users = scanned.collection === USERS;
  const merged = users
    ? plan.conflicts.flatMap(({ resolution }) =>
        resolution.action === 'merge' && plan.options.mergeConflicts ? [resolution.loser] : [],
      )
    : [];
  const converted = users && scanned.field === 'parent' ? convertedOf(plan) : [];
  const updates = plan.steps
    .filter((step) => step.collection === scanned.collection && step.moves !== undefined)
    .flatMap((step) => step.update as Document[]);
  const when = (ids: ObjectId[], value: unknown, otherwise: unknown) =>
    ids.length === 0
      ? otherwise
      : { $cond: [{ $in: ['$_id', { $literal: ids }] }, { $literal: value }, otherwise] };
  const stages: Document[] = [
    {
      $match:
        converted.length === 0
          ? scalarFilter(scanned.field, values)
          : { $or: [scalarFilter(scanned.field, values), { _id: { $in: converted } }] },
    },
    ...updates,
  ];
  if (merged.length > 0 || converted.length > 0) {
    stages.push({
      $set: {
        [scanned.field]: when(converted, destination, `$${scanned.field}`),
        kind: when(converted, ADMIN_KIND, '$kind'),
        active: when(converted, true, when(merged, false, '$active')),
        markedDelete: when(merged, true, '$markedDelete'),
      },
    });
  }
  return stages;
}
