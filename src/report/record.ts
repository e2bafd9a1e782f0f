import { randomUUID } from 'node:crypto';
import type { Conflict } from '../plan/conflicts.js';
import type { CustomerRequest } from '../plan/resolve.js';
import type { MigrationOptions, Plan } from '../plan/scan.js';
import { ExitCode, type MigrationError } from '../shared/errors.js';
import { canonical, plain } from '../shared/plain.js';
import type { Document, UpdateResult } from '../store/types.js';
import { type Applied, describeStep, survivorOf } from '../transaction/apply.js';

export type RecordStatus = 'completed' | 'failed' | 'rolled_back' | 'unknown' | 'noop';

/**
 * One history record per execution: plain JSON for jq (hex ids, ISO dates), except the documents kept for
 * proof (`before`), which are canonical Extended JSON with their credentials masked (the journal in the
 * database keeps them whole, under its access control).
 */
export interface HistoryRecord {
  id: string;
  status: RecordStatus;
  /** A rollback's record names the migration it reverses. */
  rollsBack?: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  target: string;
  request: CustomerRequest | { rollback: string };
  sources: { id: string; username: string; followUp?: boolean }[];
  destination: { id: string; username: string } | null;
  options: MigrationOptions | null;
  planFingerprint: string | null;
  stats: {
    documentsModified: number;
    customerRefs: Record<string, UpdateResult>;
    accountRefs: Record<string, UpdateResult>;
    /** References stored as hex strings, moved in their own spelling: per field, how many. */
    stringRefs: Record<string, number>;
    sourceCustomers: UpdateResult;
    mergedAccounts: number;
    steps: unknown[];
    errors: string[];
  };
  journal?: { collection: string; chunks: number; documents: number };
  /**
   * Documents still referencing a source or a merged account after the commit (written concurrently): a follow-up
   * run moves them.
   */
  stragglers?: Record<string, number>;
  /** Usernames two live accounts share under the destination after the commit (written concurrently). */
  usernameClashes?: UsernameClash[];
  /** A follow-up run: the earlier migrations of its sources into this destination. */
  followUpOf?: string[];
  /** A `noop` run: the migrations that had already moved its sources, and whether one committed while it waited. */
  nothingToDo?: { movedBy: { id: string; startedAt: string }[]; committedMeanwhile: boolean };
  conflicts: unknown[];
  mergedAccounts: { before: unknown; survivor: string }[];
  convertedCustomers: { before: unknown }[];
  error?: { message: string; exitCode: number; kind: string };
  /** For an unknown outcome: how to find out what happened. */
  check?: string;
}

export interface UsernameClash {
  username: string;
  /** The account the migration brought under the destination. */
  moved: { id: string; username: string; kind: string; from: string };
  /** The live account already under the destination with the same username. */
  existing: { id: string; username: string; kind: string };
  whatToDo: string;
}

export function clashRecord(conflict: Conflict, whatToDo: string): UsernameClash {
  const { incoming, existing } = conflict;
  return {
    username: conflict.username,
    moved: {
      id: incoming._id.toHexString(),
      username: incoming.username,
      kind: String(plain(incoming.kind)),
      from: incoming.owner.username,
    },
    existing: {
      id: existing._id.toHexString(),
      username: existing.username,
      kind: String(plain(existing.kind)),
    },
    whatToDo,
  };
}

export interface RunFacts {
  id: string;
  startedAt: Date;
  target: string;
  request: CustomerRequest;
  options: MigrationOptions;
  secretFields: string[];
}

export function newRunId(): string {
  return randomUUID();
}

export function completedRecord(run: RunFacts, applied: Applied): HistoryRecord {
  const record = baseRecord(run, 'completed', applied.plan);
  const add = (bucket: Record<string, UpdateResult>, key: string, r: UpdateResult) => {
    const entry = bucket[key] ?? { matched: 0, modified: 0 };
    bucket[key] = { matched: entry.matched + r.matched, modified: entry.modified + r.modified };
  };
  for (const result of applied.results) {
    const { step } = result;
    const key = `${step.collection}.${step.field ?? ''}`;
    if (step.action === 'repoint-customer-refs') add(record.stats.customerRefs, key, result);
    if (step.action === 'repoint-account-refs') add(record.stats.accountRefs, key, result);
    for (const move of step.moves ?? []) {
      if (typeof move.from === 'string')
        record.stats.stringRefs[key] = (record.stats.stringRefs[key] ?? 0) + move.documents;
    }
    if (step.action === 'deactivate-sources' || step.action === 'convert-sources') {
      record.stats.sourceCustomers = { matched: result.matched, modified: result.modified };
    }
    record.stats.documentsModified += result.modified;
    record.stats.steps.push({
      action: step.action,
      description: describeStep(step),
      collection: step.collection,
      field: step.field ?? null,
      expected: step.expected,
      matched: result.matched,
      modified: result.modified,
      durationMs: result.durationMs,
    });
  }
  const masked = (document: Document) => canonical(maskSecrets(document, run.secretFields));
  const merged = applied.accounts.filter((account) => account.role === 'merged');
  record.stats.mergedAccounts = merged.length;
  record.mergedAccounts = merged.map(({ _id, before }) => ({
    before: masked(before),
    survivor: survivorOf(applied.plan, _id).toHexString(),
  }));
  record.convertedCustomers = applied.accounts
    .filter((account) => account.role === 'converted')
    .map(({ before }) => ({ before: masked(before) }));
  record.journal = applied.journal;
  if (applied.plan.prior.length > 0) record.followUpOf = applied.plan.prior.map((migration) => migration.id);
  return finish(record, run.startedAt);
}

/** A run that found nothing left to move: no journal entry, no change, only this record. */
export function noopRecord(run: RunFacts, plan: Plan, committedMeanwhile: boolean): HistoryRecord {
  const record = baseRecord(run, 'noop', plan);
  record.nothingToDo = {
    movedBy: plan.prior.map((migration) => ({
      id: migration.id,
      startedAt: migration.startedAt.toISOString(),
    })),
    committedMeanwhile,
  };
  return finish(record, run.startedAt);
}

export function failedRecord(run: RunFacts, error: MigrationError, plan: Plan | undefined): HistoryRecord {
  const record = baseRecord(run, 'failed', plan);
  markFailed(record, error);
  return finish(record, run.startedAt);
}

/** `failed`, or `unknown` (with how to check) when the commit's outcome could not be learned. */
export function markFailed(record: HistoryRecord, error: MigrationError): void {
  record.status = error.exitCode === ExitCode.unknown ? 'unknown' : 'failed';
  record.stats.errors.push(error.message);
  record.error = { message: error.message, exitCode: error.exitCode, kind: error.name };
  if (typeof error.context.check === 'string') record.check = error.context.check;
}

function baseRecord(run: RunFacts, status: RecordStatus, plan: Plan | undefined): HistoryRecord {
  return {
    id: run.id,
    status,
    startedAt: run.startedAt.toISOString(),
    finishedAt: '',
    durationMs: 0,
    target: run.target,
    request: run.request,
    sources:
      plan?.sources.map((s) => ({
        id: s._id.toHexString(),
        username: s.username,
        ...(s.followUp ? { followUp: true } : {}),
      })) ?? [],
    destination: plan
      ? { id: plan.destination._id.toHexString(), username: plan.destination.username }
      : null,
    options: run.options,
    planFingerprint: plan?.fingerprint ?? null,
    stats: emptyStats(),
    conflicts: plain(plan?.conflicts ?? []) as unknown[],
    mergedAccounts: [],
    convertedCustomers: [],
  };
}

export function emptyStats(): HistoryRecord['stats'] {
  return {
    documentsModified: 0,
    customerRefs: {},
    accountRefs: {},
    stringRefs: {},
    sourceCustomers: { matched: 0, modified: 0 },
    mergedAccounts: 0,
    steps: [],
    errors: [],
  };
}

export function finish(record: HistoryRecord, startedAt: Date): HistoryRecord {
  const finishedAt = new Date();
  record.finishedAt = finishedAt.toISOString();
  record.durationMs = finishedAt.getTime() - startedAt.getTime();
  return record;
}

const SECRET_MARKER = '[masked: the whole document is in the journal collection]';

/**
 * A field is a credential when one of the words of its name (camelCase, snake_case, kebab-case), singular or
 * plural, is one of the secret words: `passwordHash`, `api_key`, `loginTokens` are; `monkey`, `keyboard` are not.
 */
function isSecretField(name: string, words: string[]): boolean {
  const parts = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/);
  return parts.some((part) =>
    words.some((word) => part === word || part === `${word}s` || part === `${word}es`),
  );
}

function maskSecrets(document: Document, words: string[]): Document {
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype)
      return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, entry]) => [
        key,
        isSecretField(key, words) ? SECRET_MARKER : walk(entry),
      ]),
    );
  };
  return walk(document) as Document;
}
