import type { IndexInfo, ReadStore, ServerFacts } from '../store/types.js';
import type { Blocker, FieldScan, Plan } from './scan.js';
import { scalarFilter, spellings } from './scan.js';
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
  const blockers = [...shardKeyBlockers(moved, facts), ...journalShardKey(journal, facts)];
  if (facts.indexes) blockers.push(...(await uniqueIndexBlockers(store, plan, moved, facts.indexes)));
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
 * One aggregate per such index groups the documents as they will be keyed (a partial index's filter is
 * evaluated on the documents as they are now, so a merge may be refused that the server would allow).
 */
async function uniqueIndexBlockers(
  store: ReadStore,
  plan: Plan,
  moved: FieldScan[],
  indexes: Record<string, IndexInfo[]>,
): Promise<Blocker[]> {
  const blockers: Blocker[] = [];
  const destination = plan.destination._id;
  for (const scanned of moved.filter((f) => f.kind === 'customer')) {
    for (const index of indexes[scanned.collection] ?? []) {
      const keys = Object.keys(index.key);
      if (!index.unique || !keys.includes(scanned.field)) continue;
      const others = keys.filter((key) => key !== scanned.field);
      const values = [...scanned.moves.map((move) => move.from), ...spellings(destination)];
      const match = {
        ...scalarFilter(scanned.field, values),
        ...(index.partialFilterExpression ?? {}),
        ...(index.sparse ? Object.fromEntries(keys.map((key) => [key, { $exists: true }])) : {}),
      };
      const pipeline = [
        { $match: match },
        {
          $group: {
            _id: {
              ...Object.fromEntries(others.map((key, i) => [`k${i}`, `$${key}`])),
              spelling: { $type: `$${scanned.field}` },
            },
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
          others.map((key, i) => `${key}: ${JSON.stringify(group._id[`k${i}`] ?? null)}`).join(', '),
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
