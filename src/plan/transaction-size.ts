import type { ObjectId } from 'mongodb';
import type { CacheFacts, CollectionSize, CommitLimits, IndexInfo, ServerFacts } from '../store/types.js';
import type { FieldScan, Move, Plan } from './scan.js';
import { USERS } from './schema.js';

/**
 * What a migration's one transaction will cost the server, against the limits that abort it.
 *
 * - **The cache.** A transaction's uncommitted changes stay in the WiredTiger cache until it commits: eviction
 *   cannot write them out. When dirty content reaches WiredTiger's eviction triggers (`eviction_updates_trigger`,
 *   by default half of `eviction_dirty_trigger`, which is 20 % of the cache), application threads must evict,
 *   and a transaction pinning that content is rolled back. What the running workload has already dirtied comes
 *   off that budget. `transactionTooLargeForCacheThreshold` (6.2+) only decides how the abort is reported:
 *   TransactionTooLargeForCache when the transaction holds more than that share of the dirty cache, otherwise
 *   a WriteConflict, which MongoDB labels transient.
 * - **The time.** The server aborts a transaction open longer than `transactionLifetimeLimitSeconds` (60 s by
 *   default); on a large host with a large cache this usually binds first.
 *
 * The bytes dirtied are estimated from the server's own figures ($collStats): each re-pointed document rewritten
 * at its collection's average size, and for each index holding the moved field one entry removed and one
 * inserted at that index's average entry size; the journal adds each moved id and the accounts' before- and
 * after-images. This is an upper bound for the documents (MongoDB may store a small change as a delta).
 */
export const ASSUMED = {
  /** Bytes per document when $collStats is not available (a snapshot file, or no privilege to run it). */
  documentBytes: 1_024,
  /** Bytes per index entry when the index's size is not known. */
  indexEntryBytes: 48,
  /** Documents re-pointed per second inside the transaction, its journal included: cautious, for a busy server. */
  documentsPerSecond: 5_000,
  /** Documents a collection scan reads per second (a count or an update on an unindexed field). */
  scannedPerSecond: 200_000,
  /** One journaled id: an ObjectId in a BSON array, with its array key. */
  journalIdBytes: 20,
} as const;

/** Each proposed phase stays within this share of every limit, leaving room for the estimate's error. */
export const PHASE_SHARE = 0.8;
const DEFAULT_LIFETIME_SECONDS = 60;
const MIB = 2 ** 20;

export interface Cost {
  documents: number;
  documentBytes: number;
  indexBytes: number;
  journalBytes: number;
  /** All three: what the transaction dirties in cache. */
  bytes: number;
  seconds: number;
}

export interface Limit {
  name: 'cache' | 'time';
  /** Bytes for the cache, seconds for the time. */
  limit: number;
  used: number;
  /** used / limit. */
  share: number;
  basis: string;
}

export interface SourceCost {
  _id: ObjectId;
  username: string;
  cost: Cost;
  shares: Record<string, number>;
}

export interface Phase {
  sources: { _id: ObjectId; username: string }[];
  shares: Record<string, number>;
}

export interface SizeAssessment {
  cost: Cost;
  /** The cache (when the server reports it) and the time. */
  limits: Limit[];
  /** The limit with the largest share: the one that binds first. */
  binding: Limit;
  /** Some limit is exceeded. */
  over: boolean;
  sources: SourceCost[];
  /** When over, groups of sources in their given order, each within PHASE_SHARE of every limit. */
  phases: Phase[];
  /** Sources that exceed a limit even alone. */
  alone: SourceCost[];
  /** How MongoDB would report a cache abort. */
  cacheAbort: string;
  /** minSnapshotHistoryWindowInSeconds, when the server has it: how long one snapshot stays readable. */
  snapshotWindowSeconds?: number;
  commit?: CommitLimits;
  /** The assumptions and fallbacks this estimate rests on. */
  assumptions: string[];
}

interface Inputs {
  plan: Plan;
  facts: ServerFacts;
}

/** Estimates the transaction, says which limit binds and by how much, and proposes phases when one is exceeded. */
export function assessSize(plan: Plan, facts: ServerFacts): SizeAssessment {
  const inputs = { plan, facts };
  const assumptions = assumptionsOf(plan, facts);
  const all = plan.sources.map((source) => source._id);
  const cost = costOf(inputs, all);
  const limits = limitsOf(facts, cost);
  const binding = limits.reduce((worst, limit) => (limit.share > worst.share ? limit : worst));
  const over = limits.some((limit) => limit.share > 1);
  const sources = plan.sources.map((source) => {
    const own = costOf(inputs, [source._id]);
    return { _id: source._id, username: source.username, cost: own, shares: sharesOf(facts, own) };
  });
  const phases = over && plan.sources.length > 1 ? phasesOf(inputs) : [];
  return {
    cost,
    limits,
    binding,
    over,
    sources,
    phases,
    alone: sources.filter((source) => Object.values(source.shares).some((share) => share > 1)),
    cacheAbort: cacheAbortOf(facts),
    ...(facts.snapshotWindowSeconds === undefined
      ? {}
      : { snapshotWindowSeconds: facts.snapshotWindowSeconds }),
    ...(facts.commit ? { commit: facts.commit } : {}),
    assumptions,
  };
}

/** Next-fit in the order given, so the first-listed source still wins each username it had first. */
function phasesOf(inputs: Inputs): Phase[] {
  const phases: Phase[] = [];
  let current: Inputs['plan']['sources'] = [];
  const fits = (group: typeof current) =>
    Object.values(sharesOf(inputs.facts, costOf(inputs, ids(group)))).every((share) => share <= PHASE_SHARE);
  for (const source of inputs.plan.sources) {
    if (current.length > 0 && !fits([...current, source])) {
      phases.push(phaseOf(inputs, current));
      current = [];
    }
    current.push(source);
  }
  if (current.length > 0) phases.push(phaseOf(inputs, current));
  return phases;
}

function phaseOf(inputs: Inputs, group: Inputs['plan']['sources']): Phase {
  return {
    sources: group.map(({ _id, username }) => ({ _id, username })),
    shares: sharesOf(inputs.facts, costOf(inputs, ids(group))),
  };
}

function ids(group: { _id: ObjectId }[]): ObjectId[] {
  return group.map((source) => source._id);
}

/** What migrating only `sources` (from this plan) would cost. */
function costOf({ plan, facts }: Inputs, sources: ObjectId[]): Cost {
  const owned = new Set(sources.map((id) => id.toHexString()));
  const ownerOf = ownersOf(plan);
  const cost: Cost = { documents: 0, documentBytes: 0, indexBytes: 0, journalBytes: 0, bytes: 0, seconds: 0 };
  for (const field of plan.fields.filter((f) => !f.skipped)) {
    const documents = field.moves
      .filter((move) => owned.has(ownerOf(move)))
      .reduce((sum, move) => sum + move.documents, 0);
    if (documents === 0) continue;
    const size = facts.sizes?.[field.collection];
    cost.documents += documents;
    cost.documentBytes += documents * documentBytes(size);
    cost.indexBytes += documents * 2 * indexEntryBytes(field, facts.indexes?.[field.collection], size);
    cost.journalBytes += documents * ASSUMED.journalIdBytes;
    cost.seconds += documents / ASSUMED.documentsPerSecond;
    if (facts.indexes && !indexed(field, facts.indexes[field.collection] ?? [])) {
      // The count and the update each scan the whole collection, once per transaction.
      cost.seconds += (2 * (size?.count ?? documents)) / ASSUMED.scannedPerSecond;
    }
  }
  // Each source customer, and each account merged away, is replaced whole; the journal keeps both images.
  const accounts = plan.sources.filter((s) => owned.has(s._id.toHexString())).length + mergedOf(plan, owned);
  const accountBytes = documentBytes(facts.sizes?.[USERS]);
  cost.documents += accounts;
  cost.documentBytes += accounts * accountBytes;
  cost.journalBytes += accounts * 2 * accountBytes;
  cost.bytes = cost.documentBytes + cost.indexBytes + cost.journalBytes;
  return cost;
}

/** Who a move belongs to: the source it re-points, or the source owning the account merged away. */
function ownersOf(plan: Plan): (move: Move) => string {
  const owners = new Map<string, string>();
  for (const source of plan.sources) owners.set(source._id.toHexString(), source._id.toHexString());
  for (const conflict of plan.conflicts) {
    if (conflict.resolution.action !== 'merge') continue;
    const loser = conflict.resolution.loser.toHexString();
    const account = [conflict.incoming, conflict.existing].find((a) => a._id.toHexString() === loser);
    if (account) owners.set(loser, account.owner._id.toHexString());
  }
  const fallback = plan.sources[0]?._id.toHexString() ?? '';
  return (move) => {
    const from = typeof move.from === 'string' ? move.from : move.from.toHexString();
    return owners.get(from) ?? fallback;
  };
}

function mergedOf(plan: Plan, owned: Set<string>): number {
  return plan.conflicts.filter((conflict) => {
    if (conflict.resolution.action !== 'merge') return false;
    const loser = conflict.resolution.loser.toHexString();
    const account = [conflict.incoming, conflict.existing].find((a) => a._id.toHexString() === loser);
    return account !== undefined && owned.has(account.owner._id.toHexString());
  }).length;
}

function documentBytes(size: CollectionSize | undefined): number {
  return size && size.count > 0 ? size.avgObjSize : ASSUMED.documentBytes;
}

/** The average entry of every index holding the field (one assumed index when the indexes are not known). */
function indexEntryBytes(
  field: FieldScan,
  indexes: IndexInfo[] | undefined,
  size: CollectionSize | undefined,
) {
  if (!indexes) return ASSUMED.indexEntryBytes;
  return indexes
    .filter((index) => Object.keys(index.key).includes(field.field))
    .reduce((sum, index) => {
      const bytes = size?.indexSizes[index.name];
      return (
        sum + (bytes !== undefined && size && size.count > 0 ? bytes / size.count : ASSUMED.indexEntryBytes)
      );
    }, 0);
}

function indexed(field: FieldScan, indexes: IndexInfo[]): boolean {
  return indexes.some((index) => Object.keys(index.key)[0] === field.field);
}

function limitsOf(facts: ServerFacts, cost: Cost): Limit[] {
  const limits: Limit[] = [];
  const cache = cacheBudget(facts.cache);
  if (cache)
    limits.push({
      name: 'cache',
      limit: cache.bytes,
      used: cost.bytes,
      share: share(cost.bytes, cache.bytes),
      basis: cache.basis,
    });
  const lifetime = facts.transactionLifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
  limits.push({
    name: 'time',
    limit: lifetime,
    used: cost.seconds,
    share: share(cost.seconds, lifetime),
    basis:
      facts.transactionLifetimeSeconds === undefined
        ? `transactionLifetimeLimitSeconds, assumed at its default of ${DEFAULT_LIFETIME_SECONDS} s`
        : `the server's transactionLifetimeLimitSeconds`,
  });
  return limits;
}

function sharesOf(facts: ServerFacts, cost: Cost): Record<string, number> {
  return Object.fromEntries(limitsOf(facts, cost).map((limit) => [limit.name, limit.share]));
}

function share(used: number, limit: number): number {
  return limit > 0 ? used / limit : Number.POSITIVE_INFINITY;
}

/** A trigger of 1-100 is a percentage of the cache; above 100 it is bytes. */
function triggerBytes(trigger: number, cacheBytes: number): number {
  return trigger <= 100 ? (trigger / 100) * cacheBytes : trigger;
}

/** The room the transaction has: the lower of the two triggers, less what the workload already holds there. */
export function cacheBudget(cache: CacheFacts | undefined): { bytes: number; basis: string } | undefined {
  if (!cache) return undefined;
  const dirty = triggerBytes(cache.dirtyTrigger, cache.sizeBytes);
  const updates = cache.updatesTrigger > 0 ? triggerBytes(cache.updatesTrigger, cache.sizeBytes) : dirty / 2;
  const candidates = [
    { name: 'eviction_updates_trigger', trigger: updates, held: cache.updatesBytes, what: 'updates' },
    { name: 'eviction_dirty_trigger', trigger: dirty, held: cache.dirtyBytes, what: 'dirty data' },
  ].map((c) => ({ ...c, room: Math.max(0, c.trigger - (c.held ?? 0)) }));
  const tightest = candidates.reduce((a, b) => (b.room < a.room ? b : a));
  const held =
    tightest.held === undefined
      ? ` (serverStatus does not say what the workload already holds: none assumed)`
      : tightest.held === 0
        ? `, of which the workload holds none`
        : ` less ${mib(tightest.held)} of ${tightest.what} the workload already holds`;
  return {
    bytes: tightest.room,
    basis: `${tightest.name}, ${mib(tightest.trigger)} (${percent(tightest.trigger / cache.sizeBytes)} of the ${mib(cache.sizeBytes)} cache, from ${cache.triggerSource})${held}`,
  };
}

function cacheAbortOf(facts: ServerFacts): string {
  if (facts.tooLargeForCacheThreshold === undefined) {
    return 'MongoDB aborts it, often as a WriteConflict (112) that it labels transient, or as TransactionTooLargeForCache (388) from 6.2';
  }
  return `MongoDB aborts it, as TransactionTooLargeForCache (388) when it holds more than ${percent(facts.tooLargeForCacheThreshold)} of the dirty cache (transactionTooLargeForCacheThreshold), else as a WriteConflict (112)`;
}

function assumptionsOf(plan: Plan, facts: ServerFacts): string[] {
  const assumptions = [
    `${ASSUMED.documentsPerSecond} documents re-pointed per second, and ${ASSUMED.scannedPerSecond} scanned per second on an unindexed field (assumed, not measured on your server)`,
  ];
  const collections = [
    ...new Set(plan.fields.filter((f) => !f.skipped && f.moves.length > 0).map((f) => f.collection)),
  ];
  const unsized = collections.filter((name) => !(facts.sizes?.[name]?.count ?? 0));
  if (unsized.length > 0) {
    assumptions.push(
      `${ASSUMED.documentBytes} bytes per document of ${unsized.join(', ')} (the server gave no average size)`,
    );
  }
  if (!facts.indexes)
    assumptions.push(`one index of ${ASSUMED.indexEntryBytes}-byte entries per moved field`);
  if (!facts.cache) assumptions.push('no cache figures: the cache limit could not be checked');
  return assumptions;
}

/** A size as read at a glance: KiB below a MiB, one decimal below 10 MiB. */
export function mib(bytes: number): string {
  if (bytes < MIB) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / MIB).toFixed(bytes < 10 * MIB ? 1 : 0)} MiB`;
}

export function percent(fraction: number): string {
  if (!Number.isFinite(fraction)) return 'over 100 %';
  return `${Math.round(fraction * 100)} %`;
}
