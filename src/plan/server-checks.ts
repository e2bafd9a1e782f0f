import type { IndexInfo, ReadStore, ServerFacts } from '../store/types.js';
import type { Blocker, FieldScan, Plan } from './scan.js';
import { scalarFilter, spellings } from './scan.js';

/**
 * Where the server's own facts (read outside the transaction: listIndexes is not allowed inside one) change
 * what the plan may do. Transactions that outgrow the WiredTiger cache abort: a transaction may dirty about
 * 0.75 (transactionTooLargeForCacheThreshold) of the 20 % dirty-eviction trigger, so ~15 % of the cache.
 */
const CACHE_SHARE = 0.15;
/** A rewritten document plus the index entries its changed field touches, dirtied in cache (an estimate). */
const BYTES_PER_DOCUMENT = 1_024;
/** Used when the server does not tell its cache size (no serverStatus privilege, or a snapshot file). */
export const FALLBACK_WARNING_DOCUMENTS = 100_000;

export interface Assessment {
  warnings: string[];
  blockers: Blocker[];
  /** The size above which the preview warns, and where that number comes from. */
  threshold: { documents: number; basis: string };
}

export async function assessPlan(store: ReadStore, plan: Plan, facts: ServerFacts): Promise<Assessment> {
  const moved = plan.fields.filter((f) => !f.skipped && f.moves.length > 0);
  const threshold = thresholdOf(facts);
  const warnings = [
    ...facts.unknown.map((what) => `Could not read ${what}; the checks that need it were skipped`),
  ];
  if (plan.estimate.documents > threshold.documents) {
    warnings.push(
      `About ${plan.estimate.documents} documents would change in one transaction, above ${threshold.documents} (${threshold.basis}); it may abort for the cache or the 60 s lifetime: migrate fewer sources at a time`,
    );
  }
  if (facts.indexes) warnings.push(...unindexed(plan.fields, facts.indexes));
  const blockers = [...shardKeyBlockers(moved, facts)];
  if (facts.indexes) blockers.push(...(await uniqueIndexBlockers(store, plan, moved, facts.indexes)));
  return { warnings, blockers, threshold };
}

function thresholdOf(facts: Pick<ServerFacts, 'cacheBytes'>): Assessment['threshold'] {
  if (facts.cacheBytes === undefined) {
    return {
      documents: FALLBACK_WARNING_DOCUMENTS,
      basis: 'fallback: no server cache size known',
    };
  }
  const mib = Math.round(facts.cacheBytes / 2 ** 20);
  return {
    documents: Math.floor((facts.cacheBytes * CACHE_SHARE) / BYTES_PER_DOCUMENT),
    basis: `15 % of the server's ${mib} MiB WiredTiger cache at ~1 KiB per document`,
  };
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
