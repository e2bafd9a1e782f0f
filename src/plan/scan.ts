import { createHash } from 'node:crypto';
import { BSON, type ObjectId } from 'mongodb';
import { collect, type Document, type ReadStore, type Update } from '../store/types.js';
import { type Conflict, findConflicts, type Tree } from './conflicts.js';
import { finalMerges, type PriorMigration, priorMigrations } from './prior.js';
import { ACCOUNT_PROJECTION, type Account, isDeleted, type ResolvedCustomers } from './resolve.js';
import { ADMIN_KIND, CUSTOMER_KIND, type FieldRef, fieldRefs, type ReferenceMap, USERS } from './schema.js';

export interface MigrationOptions {
  mergeConflicts: boolean;
  convertToAdmin: boolean;
  skipInvoices: boolean;
}

/** What makes one execution unique: its id (history record and journal entry) and its timestamp. */
export interface Run {
  id: string;
  now: Date;
}

/** The account kinds the guide counts as sub-accounts. */
export const SUB_ACCOUNT_KINDS = ['3', '5', '9'];

export type StepAction =
  | 'repoint-account-refs'
  | 'mark-merged-accounts'
  | 'repoint-customer-refs'
  | 'deactivate-sources'
  | 'convert-sources'
  | 'mark-destination';

/** A reference value and where it goes: a source to the destination, or a merged account to its survivor. */
export interface Move {
  /** An ObjectId, or its hex string in legacy documents (which stays a string). */
  from: ObjectId | string;
  to: ObjectId | string;
  documents: number;
}

/** One server-side updateMany: the plan says exactly what will run and how many documents it must match. */
export interface Step {
  action: StepAction;
  collection: string;
  /** The reference field re-pointed, for the repoint steps. */
  field?: string;
  filter: Document;
  update: Update;
  expected: number;
  /** For the repoint steps: the values moved, which the journal records document by document. */
  moves?: Move[];
}

export interface Counts {
  live: number;
  softDeleted: number;
}

/** One reference field as the scan found it. */
export interface FieldScan {
  kind: 'customer' | 'account';
  collection: string;
  field: string;
  moves: Move[];
  /** Documents whose field is an array holding a moved value: never overwritten, so they block the run. */
  arrays: { documents: number; sample: string[] };
  /** --skip-invoices: counted, left with the sources. */
  skipped: boolean;
  /** Customer references: the documents the destination already has, and those that would join them. */
  destination?: { before: Counts; moving: Counts };
}

export interface CustomerSummary {
  _id: ObjectId;
  username: string;
  active: boolean;
  /** A source already migrated into this destination: only what was left behind moves. */
  followUp: boolean;
  subAccounts: { total: number; softDeleted: number; byKind: Record<string, number> };
}

export interface Blocker {
  kind: 'conflicts' | 'array-references' | 'unique-index' | 'shard-key';
  message: string;
}

/** What `verify` expects after the migration, in the guide's own terms. */
export interface Expectations {
  /** Per customer reference field: the destination's documents after the migration. */
  customerRefs: Record<string, Counts>;
  /** Sub-accounts (kinds 3, 5, 9) under the destination after the migration: the guide's query. */
  subAccounts: number;
  /**
   * Accounts whose parent becomes the destination (merged ones included), and with --convert-to-admin the
   * source customers themselves, which become admins under it (`converted`).
   */
  movingAccounts: { _id: ObjectId; username: string; kind: string; from: string; converted?: true }[];
}

export interface Plan {
  sources: CustomerSummary[];
  destination: CustomerSummary;
  options: MigrationOptions;
  /** Earlier migrations of follow-up sources into this destination (empty when no source is a follow-up). */
  prior: PriorMigration[];
  conflicts: Conflict[];
  /**
   * Every account whose references this run moves to a survivor: those it merges, and those earlier runs of
   * its follow-up sources merged (a reference written to one of them since belongs to its survivor).
   */
  merges: { from: ObjectId; to: ObjectId }[];
  /** Why execution would stop before writing; empty when it would proceed. */
  blockers: Blocker[];
  steps: Step[];
  fields: FieldScan[];
  expectations: Expectations;
  estimate: { documents: number };
  warnings: string[];
  /** Stable digest of what would run; `--expect-plan` insists the executed plan is the reviewed one. */
  fingerprint: string;
}

export function isBlocked(plan: Pick<Plan, 'blockers'>): boolean {
  return plan.blockers.length > 0;
}

/**
 * Every source was already migrated into this destination and nothing was left behind: the run would only
 * record itself on the destination. It must not (a journal entry of nothing would block rolling back the real one).
 */
export function nothingToDo(plan: Pick<Plan, 'sources' | 'blockers' | 'steps'>): boolean {
  return (
    plan.sources.every((source) => source.followUp) &&
    !isBlocked(plan) &&
    plan.steps.every((step) => step.action === 'mark-destination')
  );
}

/** The values a customer or account can be referenced by: its ObjectId, and its hex string in old documents. */
export function spellings(id: ObjectId): [ObjectId, string] {
  return [id, id.toHexString()];
}

function sameSpelling(to: ObjectId, from: ObjectId | string): ObjectId | string {
  return typeof from === 'string' ? to.toHexString() : to;
}

/**
 * Works out everything a migration would do, reading only: the conflicts, then, per reference field, one
 * aggregate for the counts of every value involved and one updateMany with the number of documents it must
 * match. Run for the preview and again inside the transaction. Its database commands depend neither on how
 * many documents move nor on how many accounts merge; memory grows only with the accounts of the trees involved.
 */
export async function scanMigration(
  store: ReadStore,
  customers: ResolvedCustomers,
  options: MigrationOptions,
  map: ReferenceMap,
  run: Run,
): Promise<Plan> {
  const { sources, destination } = customers;
  const trees = await readTrees(store, customers);
  const prior = await priorMigrations(
    store,
    map.journalCollection,
    sources.filter((source) => source.followUp).map((source) => source._id),
    destination._id,
  );
  const conflicts = findConflicts(...conflictTrees(trees, prior), options.convertToAdmin);
  const conflictBlocks =
    conflicts.length > 0 &&
    (!options.mergeConflicts || conflicts.some((c) => c.resolution.action === 'block'));
  const merging = options.mergeConflicts && !conflictBlocks ? mergesOf(conflicts) : [];
  const merges = finalMerges([...prior.flatMap((migration) => migration.merges), ...merging]);

  const skipped = (ref: FieldRef) => options.skipInvoices && ref.invoice;
  const fields: FieldScan[] = [];
  for (const ref of merges.length > 0 ? fieldRefs(map.accountRefs, map) : []) {
    fields.push(await scanField(store, ref, 'account', merges, [], skipped(ref)));
  }
  const sourceMoves = sources.map((source) => ({ from: source._id, to: destination._id }));
  for (const ref of fieldRefs(map.customerRefs, map)) {
    fields.push(
      await scanField(store, ref, 'customer', sourceMoves, spellings(destination._id), skipped(ref)),
    );
  }

  const steps = [
    ...fields.filter((f) => f.kind === 'account').flatMap(repointStep),
    ...markMergedStep(merging, run.now),
    ...fields.filter((f) => f.kind === 'customer').flatMap(repointStep),
    ...sourceStep(customers, options, run.now),
    markDestinationStep(destination, run.id),
  ];
  const summaries = trees.map(summarize);
  const plan: Omit<Plan, 'fingerprint'> = {
    sources: summaries.slice(1),
    destination: summaries[0] as CustomerSummary,
    options,
    prior,
    conflicts,
    merges,
    blockers: blockersOf(conflicts, conflictBlocks, options, fields),
    steps,
    fields,
    expectations: expectationsOf(fields, trees, options),
    estimate: { documents: steps.reduce((sum, step) => sum + step.expected, 0) },
    warnings: warningsFor(summaries, prior, steps),
  };
  return { ...plan, fingerprint: fingerprintOf(plan) };
}

function mergesOf(conflicts: Conflict[]): { from: ObjectId; to: ObjectId }[] {
  return conflicts.flatMap(({ resolution }) =>
    resolution.action === 'merge' ? [{ from: resolution.loser, to: resolution.survivor }] : [],
  );
}

/**
 * One aggregate per field: how many documents hold each value that moves (as an ObjectId or as its hex string),
 * how many hold it inside an array, and, for customer references, how many the destination already has.
 */
async function scanField(
  store: ReadStore,
  ref: FieldRef,
  kind: FieldScan['kind'],
  pairs: { from: ObjectId; to: ObjectId }[],
  destinationValues: (ObjectId | string)[],
  skipped: boolean,
): Promise<FieldScan> {
  const { collection, field } = ref;
  const candidates = pairs.flatMap((pair) =>
    spellings(pair.from).map((from) => ({ from, to: sameSpelling(pair.to, from) })),
  );
  const fromValues = candidates.map((candidate) => candidate.from);
  const groups = await collectGroups(store, collection, field, fromValues, destinationValues);
  const countOf = (value: unknown): Counts => groups.get(keyOf(value)) ?? { live: 0, softDeleted: 0 };
  const total = (counts: Counts) => counts.live + counts.softDeleted;

  const moves = candidates
    .map((candidate) => ({ ...candidate, documents: total(countOf(candidate.from)) }))
    .filter((move) => move.documents > 0);
  const arrayCount = total(countOf(ARRAY));
  const sample =
    arrayCount === 0
      ? []
      : (
          await collect(
            store.find(collection, arrayFilter(field, fromValues), { projection: { _id: 1 }, limit: 5 }),
          )
        ).map((document) => String(document._id));
  const scanned: FieldScan = {
    kind,
    collection,
    field,
    moves,
    arrays: { documents: arrayCount, sample },
    skipped,
  };
  if (kind === 'customer') {
    const sum = (values: unknown[]) =>
      values
        .map(countOf)
        .reduce((a, b) => ({ live: a.live + b.live, softDeleted: a.softDeleted + b.softDeleted }), {
          live: 0,
          softDeleted: 0,
        });
    scanned.destination = { before: sum(destinationValues), moving: sum(moves.map((move) => move.from)) };
  }
  return scanned;
}

const ARRAY = '\u0000array';

/** Group keys for any BSON value: type and value, so an ObjectId and its hex string stay apart. */
function keyOf(value: unknown): string {
  return BSON.EJSON.stringify({ value }, { relaxed: false });
}

async function collectGroups(
  store: ReadStore,
  collection: string,
  field: string,
  fromValues: unknown[],
  destinationValues: unknown[],
): Promise<Map<string, Counts>> {
  const path = `$${field}`;
  const groups = new Map<string, Counts>();
  const pipeline = [
    {
      $match: {
        $or: [
          { [field]: { $in: fromValues } },
          { [field]: { $in: destinationValues, $not: { $type: 'array' } } },
        ],
      },
    },
    {
      $group: {
        _id: {
          value: { $cond: [{ $isArray: path }, ARRAY, path] },
          deleted: { $eq: ['$markedDelete', true] },
        },
        n: { $sum: 1 },
      },
    },
  ];
  for await (const group of store.aggregate(collection, pipeline)) {
    const key = keyOf(group._id.value);
    const counts = groups.get(key) ?? { live: 0, softDeleted: 0 };
    if (group._id.deleted === true) counts.softDeleted += Number(group.n);
    else counts.live += Number(group.n);
    groups.set(key, counts);
  }
  return groups;
}

/** Documents whose field holds one of the values as a single value, never as an element of an array. */
export function scalarFilter(field: string, values: unknown[]): Document {
  return { [field]: { $in: values, $not: { $type: 'array' } } };
}

function arrayFilter(field: string, values: unknown[]): Document {
  return { [field]: { $in: values, $type: 'array' } };
}

/**
 * One pipeline update per field maps every moved value to its target in the value's own spelling: constant in
 * the number of sources and of merged accounts.
 */
function switchUpdate(field: string, moves: Pick<Move, 'from' | 'to'>[]): Document[] {
  return [{ $set: { [field]: valueSwitch(`$${field}`, moves, `$${field}`) } }];
}

/** `$switch` mapping each `from` value (a literal, never a field path or an operator) to its `to` value. */
function valueSwitch(path: string, moves: Pick<Move, 'from' | 'to'>[], otherwise: unknown): Document {
  return {
    $switch: {
      branches: moves.map((move) => ({
        case: { $eq: [path, { $literal: move.from }] },
        // biome-ignore lint/suspicious/noThenProperty: MongoDB's $switch names its result field "then".
        then: { $literal: move.to },
      })),
      default: otherwise,
    },
  };
}

function repointStep(scanned: FieldScan): Step[] {
  if (scanned.skipped || scanned.moves.length === 0) return [];
  return [
    {
      action: scanned.kind === 'customer' ? 'repoint-customer-refs' : 'repoint-account-refs',
      collection: scanned.collection,
      field: scanned.field,
      filter: scalarFilter(
        scanned.field,
        scanned.moves.map((move) => move.from),
      ),
      update: switchUpdate(scanned.field, scanned.moves),
      expected: scanned.moves.reduce((sum, move) => sum + move.documents, 0),
      moves: scanned.moves,
    },
  ];
}

/** All merged accounts in one update, each marked with its own survivor. */
function markMergedStep(merges: { from: ObjectId; to: ObjectId }[], now: Date): Step[] {
  if (merges.length === 0) return [];
  return [
    {
      action: 'mark-merged-accounts',
      collection: USERS,
      filter: { _id: { $in: merges.map((merge) => merge.from) }, markedDelete: { $ne: true } },
      update: [
        {
          $set: {
            markedDelete: { $literal: true },
            active: { $literal: false },
            mergedInto: valueSwitch('$_id', merges, null),
            mergedAt: { $literal: now },
          },
        },
      ],
      expected: merges.length,
    },
  ];
}

/** The sources end deactivated, or with --convert-to-admin as active admins under the destination. */
function sourceStep(
  { sources, destination }: ResolvedCustomers,
  options: MigrationOptions,
  now: Date,
): Step[] {
  const moving = sources.filter((source) => !source.followUp);
  if (moving.length === 0) return [];
  const filter = {
    _id: { $in: moving.map((source) => source._id) },
    kind: CUSTOMER_KIND,
    markedDelete: { $ne: true },
  };
  const migrated = { migratedTo: destination._id, migratedAt: now };
  const admin = { kind: ADMIN_KIND, parent: destination._id, active: true, convertedFrom: CUSTOMER_KIND };
  const deactivated = { active: false, markedDelete: true };
  return [
    {
      action: options.convertToAdmin ? 'convert-sources' : 'deactivate-sources',
      collection: USERS,
      filter,
      update: { $set: { ...(options.convertToAdmin ? admin : deactivated), ...migrated } },
      expected: moving.length,
    },
  ];
}

/**
 * The transaction writes the destination too: snapshot isolation only detects conflicts on documents the
 * transaction writes, so a destination deactivated (or migrated away) meanwhile now aborts the migration.
 * The migration's id is pushed, and a rollback pulls exactly that id.
 */
function markDestinationStep(destination: Account, migrationId: string): Step {
  return {
    action: 'mark-destination',
    collection: USERS,
    filter: { _id: destination._id, kind: CUSTOMER_KIND, markedDelete: { $ne: true } },
    update: { $push: { migrationsReceived: migrationId } },
    expected: 1,
  };
}

/**
 * The trees as the conflict check sees them: accounts earlier migrations brought under the destination from a
 * follow-up source count as arriving from that source (a username clash with an account created under the
 * destination since is then a conflict, resolved as any other), not as the destination's own.
 */
function conflictTrees(trees: Tree[], prior: PriorMigration[]): [Tree, Tree[]] {
  const [destination, ...sources] = trees as [Tree, ...Tree[]];
  if (prior.length === 0) return [destination, sources];
  const cameFrom = new Map(
    prior.flatMap((migration) => migration.arrived.map((a) => [a._id.toHexString(), a.source._id] as const)),
  );
  const arriving = sources.map((tree) => ({
    ...tree,
    arrived: tree.followUp
      ? destination.accounts.filter((a) => cameFrom.get(a._id.toHexString())?.equals(tree.customer._id))
      : [],
  }));
  const arrivedIds = new Set(arriving.flatMap((tree) => tree.arrived.map((a) => a._id.toHexString())));
  return [
    { ...destination, accounts: destination.accounts.filter((a) => !arrivedIds.has(a._id.toHexString())) },
    arriving,
  ];
}

/** The accounts under each customer, whether their parent is stored as an ObjectId or as its hex string. */
async function readTrees(store: ReadStore, { sources, destination }: ResolvedCustomers): Promise<Tree[]> {
  const all: Account[] = [destination, ...sources];
  const byParent = new Map<string, Account[]>(all.map((customer) => [customer._id.toHexString(), []]));
  const cursor = store.find(
    USERS,
    { parent: { $in: all.flatMap((customer) => spellings(customer._id)) }, kind: { $ne: CUSTOMER_KIND } },
    { projection: ACCOUNT_PROJECTION, sort: { _id: 1 } },
  );
  for await (const account of cursor) {
    byParent.get(String(account.parent).toLowerCase())?.push(account as Account);
  }
  return all.map((customer, index) => ({
    customer,
    accounts: byParent.get(customer._id.toHexString()) ?? [],
    followUp: index > 0 && (sources[index - 1]?.followUp ?? false),
  }));
}

function summarize(tree: Tree): CustomerSummary {
  const byKind: Record<string, number> = {};
  for (const account of tree.accounts) byKind[account.kind] = (byKind[account.kind] ?? 0) + 1;
  return {
    _id: tree.customer._id,
    username: tree.customer.username,
    active: tree.customer.active !== false,
    followUp: tree.followUp,
    subAccounts: { total: tree.accounts.length, softDeleted: tree.accounts.filter(isDeleted).length, byKind },
  };
}

function blockersOf(
  conflicts: Conflict[],
  conflictBlocks: boolean,
  options: MigrationOptions,
  fields: FieldScan[],
): Blocker[] {
  const blockers: Blocker[] = [];
  if (conflictBlocks) {
    const blocking = conflicts.filter((c) => c.resolution.action === 'block').length;
    blockers.push({
      kind: 'conflicts',
      message: options.mergeConflicts
        ? `${blocking} username conflict(s) cannot be merged; rename those accounts first`
        : `${conflicts.length} username conflict(s); rename the accounts first, or re-run with --merge-conflicts`,
    });
  }
  for (const scanned of fields.filter((f) => f.arrays.documents > 0 && !f.skipped)) {
    blockers.push({
      kind: 'array-references',
      message: `${scanned.collection}.${scanned.field}: ${scanned.arrays.documents} document(s) hold a moved id inside an array (e.g. ${scanned.arrays.sample.join(', ')}); the tool never overwrites an array with one id: fix those documents first`,
    });
  }
  return blockers;
}

function expectationsOf(fields: FieldScan[], trees: Tree[], options: MigrationOptions): Expectations {
  const customerRefs: Record<string, Counts> = {};
  for (const scanned of fields.filter((f) => f.kind === 'customer' && f.collection !== USERS)) {
    const { before, moving } = scanned.destination as { before: Counts; moving: Counts };
    const joining = scanned.skipped ? { live: 0, softDeleted: 0 } : moving;
    customerRefs[`${scanned.collection}.${scanned.field}`] = {
      live: before.live + joining.live,
      softDeleted: before.softDeleted + joining.softDeleted,
    };
  }
  const sourceTrees = trees.slice(1);
  const underDestination = trees.flatMap((tree) => tree.accounts);
  return {
    customerRefs,
    subAccounts: underDestination.filter((account) => SUB_ACCOUNT_KINDS.includes(account.kind)).length,
    movingAccounts: sourceTrees.flatMap((tree) => [
      ...(options.convertToAdmin && !tree.followUp
        ? [
            {
              _id: tree.customer._id,
              username: tree.customer.username,
              kind: ADMIN_KIND,
              from: tree.customer.username,
              converted: true as const,
            },
          ]
        : []),
      ...tree.accounts.map((account) => ({
        _id: account._id,
        username: account.username,
        kind: account.kind,
        from: tree.customer.username,
      })),
    ]),
  };
}

function warningsFor(summaries: CustomerSummary[], prior: PriorMigration[], steps: Step[]): string[] {
  const [destination, ...sources] = summaries as [CustomerSummary, ...CustomerSummary[]];
  const warnings: string[] = [];
  if (!destination.active) {
    warnings.push(
      `Destination ${destination.username} is inactive (active: false); its new data will be inactive too`,
    );
  }
  for (const source of sources.filter((s) => !s.active && !s.followUp)) {
    warnings.push(`Source ${source.username} is already inactive (active: false)`);
  }
  // A follow-up happens only when something was left behind; otherwise there is nothing to do (nothingToDo).
  const work = steps.some((step) => step.action !== 'mark-destination');
  for (const source of sources.filter((s) => s.followUp && work)) {
    const earlier = prior.filter((migration) => migration.sources.some((s) => s._id.equals(source._id)));
    const by = earlier.map((m) => `${m.id} at ${m.startedAt.toISOString()}`).join(', then ');
    warnings.push(
      `Source ${source.username} was already migrated into ${destination.username}${by ? ` (migration ${by})` : ''}: this follow-up run moves only what was left behind`,
    );
  }
  return warnings;
}

/** Dates and the run's id are left out: the same plan made a second later must have the same fingerprint. */
function fingerprintOf(plan: Omit<Plan, 'fingerprint'>): string {
  const essence = {
    sources: plan.sources.map((source) => [source._id, source.followUp]),
    destination: plan.destination._id,
    options: plan.options,
    conflicts: plan.conflicts.map((c) => [c.incoming._id, c.existing._id, c.resolution]),
    steps: plan.steps.map((step) => [
      step.action,
      step.collection,
      step.field ?? null,
      step.filter,
      step.expected,
    ]),
    fields: plan.fields.map((f) => [f.collection, f.field, f.skipped, f.arrays.documents]),
  };
  const text = BSON.EJSON.stringify(essence, { relaxed: false });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
