import type { ObjectId } from 'mongodb';
import { collect, type ReadStore } from '../store/types.js';

/**
 * An earlier committed migration into the same destination that took one of this run's sources, read from its
 * journal head: what a follow-up run builds on.
 */
export interface PriorMigration {
  id: string;
  startedAt: Date;
  sources: { _id: ObjectId; username: string; followUp: boolean }[];
  /** Accounts it merged away, each with its survivor: a reference written to one later belongs to the survivor. */
  merges: { from: ObjectId; to: ObjectId }[];
  /** Accounts it brought under the destination, with the source each came from (converted customers included). */
  arrived: Arrival[];
}

/** An account a migration brought under the destination, and the source customer it came from. */
export interface Arrival {
  _id: ObjectId;
  source: { _id: ObjectId; username: string };
}

/** What a plan (or a journal head) says about the accounts it brings under the destination. */
export interface ArrivalFacts {
  sources: { _id: ObjectId; username: string; followUp: boolean }[];
  options: { convertToAdmin: boolean };
  expectations: { movingAccounts: { _id: ObjectId; from: string }[] };
  /** For follow-up sources, what earlier runs brought. */
  prior: PriorMigration[];
}

/**
 * The accounts a migration brings under the destination: its sources' accounts, the customers it converts to
 * admins, and what earlier runs brought from its follow-up sources.
 */
export function arrivalsOf(facts: ArrivalFacts): Arrival[] {
  // Keyed by account: a converted customer is among the moving accounts of newer plans, and not of journal heads
  // written before they listed it; either way it arrives once.
  const arrivals = new Map<string, Arrival>();
  const add = (_id: ObjectId, source: Arrival['source'] | undefined) => {
    if (source && !arrivals.has(_id.toHexString())) arrivals.set(_id.toHexString(), { _id, source });
  };
  for (const account of facts.expectations.movingAccounts) {
    add(
      account._id,
      facts.sources.find((candidate) => candidate.username === account.from),
    );
  }
  if (facts.options.convertToAdmin) {
    for (const source of facts.sources.filter((s) => !s.followUp)) add(source._id, source);
  }
  for (const arrived of facts.prior.flatMap((migration) => migration.arrived)) {
    add(
      arrived._id,
      facts.sources.find((candidate) => candidate._id.equals(arrived.source._id)),
    );
  }
  return [...arrivals.values()];
}

/** The journal head fields read here, as a migration head stores them. */
interface StoredHead {
  _id: string;
  startedAt: Date;
  sources: { _id: ObjectId; username: string; followUp: boolean }[];
  options: { convertToAdmin: boolean };
  accounts: { _id: ObjectId; role: string; after?: { mergedInto?: ObjectId } }[];
  expectations: { movingAccounts: { _id: ObjectId; from: string }[] };
}

/**
 * Committed migrations (not rolled back) into `destination` that took any of `sources`, oldest first. One read of
 * the journal, only when a source is a follow-up; memory grows with the accounts of those migrations.
 */
export async function priorMigrations(
  store: ReadStore,
  journal: string,
  sources: ObjectId[],
  destination: ObjectId,
): Promise<PriorMigration[]> {
  if (sources.length === 0) return [];
  const heads = (await collect(
    store.find(
      journal,
      {
        type: 'migration',
        status: 'committed',
        'destination._id': destination,
        'sources._id': { $in: sources },
      },
      {
        projection: {
          _id: 1,
          startedAt: 1,
          sources: 1,
          options: 1,
          accounts: 1,
          'expectations.movingAccounts': 1,
        },
        sort: { startedAt: 1 },
      },
    ),
  )) as StoredHead[];
  return heads.map(priorOf);
}

function priorOf(head: StoredHead): PriorMigration {
  return {
    id: head._id,
    startedAt: head.startedAt,
    sources: head.sources,
    merges: head.accounts.flatMap((account) =>
      account.role === 'merged' && account.after?.mergedInto
        ? [{ from: account._id, to: account.after.mergedInto }]
        : [],
    ),
    arrived: arrivalsOf({ ...head, prior: [] }),
  };
}

/**
 * Each merged account mapped to where its references end: a survivor that was itself merged away later passes
 * them on to its own survivor.
 */
export function finalMerges(merges: { from: ObjectId; to: ObjectId }[]): { from: ObjectId; to: ObjectId }[] {
  const next = new Map(merges.map((merge) => [merge.from.toHexString(), merge.to]));
  const final = new Map<string, { from: ObjectId; to: ObjectId }>();
  for (const { from } of merges) {
    let to = next.get(from.toHexString()) as ObjectId;
    const seen = new Set([from.toHexString()]);
    while (next.has(to.toHexString()) && !seen.has(to.toHexString())) {
      seen.add(to.toHexString());
      to = next.get(to.toHexString()) as ObjectId;
    }
    final.set(from.toHexString(), { from, to });
  }
  return [...final.values()];
}
