import { randomUUID } from 'node:crypto';
import { type Applied, describeStep } from './apply.js';
import type { MigrationError } from './errors.js';
import { canonical, plain } from './plain.js';
import type { CustomerRequest } from './resolve.js';
import type { MigrationOptions, Plan } from './scan.js';
import type { UpdateResult } from './store/types.js';

/**
 * One history record per execution: plain JSON for jq (hex ids, ISO dates), except the documents kept for
 * proof and undo (`before`), which are canonical Extended JSON so no type is lost.
 */
export interface HistoryRecord {
  id: string;
  status: 'completed' | 'failed';
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  target: string;
  request: CustomerRequest;
  sources: { id: string; username: string }[];
  destination: { id: string; username: string } | null;
  options: MigrationOptions;
  planFingerprint: string | null;
  stats: {
    documentsModified: number;
    customerRefs: Record<string, UpdateResult>;
    accountRefs: Record<string, UpdateResult>;
    sourceCustomers: UpdateResult;
    mergedAccounts: number;
    steps: unknown[];
    errors: string[];
  };
  conflicts: unknown[];
  mergedAccounts: { before: unknown; survivor: string }[];
  convertedCustomers: { before: unknown }[];
  error?: { message: string; exitCode: number; kind: string };
}

export interface RunFacts {
  startedAt: Date;
  target: string;
  request: CustomerRequest;
  options: MigrationOptions;
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
  record.stats.mergedAccounts = applied.mergedAccounts.length;
  record.mergedAccounts = applied.mergedAccounts.map(({ before, survivor }) => ({
    before: canonical(before),
    survivor: survivor.toHexString(),
  }));
  record.convertedCustomers = applied.convertedCustomers.map(({ before }) => ({ before: canonical(before) }));
  return finish(record, run);
}

export function failedRecord(run: RunFacts, error: MigrationError, plan: Plan | undefined): HistoryRecord {
  const record = baseRecord(run, 'failed', plan);
  record.stats.errors.push(error.message);
  record.error = { message: error.message, exitCode: error.exitCode, kind: error.name };
  return finish(record, run);
}

function baseRecord(run: RunFacts, status: HistoryRecord['status'], plan: Plan | undefined): HistoryRecord {
  return {
    id: randomUUID(),
    status,
    startedAt: run.startedAt.toISOString(),
    finishedAt: '',
    durationMs: 0,
    target: run.target,
    request: run.request,
    sources: plan?.sources.map((s) => ({ id: s._id.toHexString(), username: s.username })) ?? [],
    destination: plan
      ? { id: plan.destination._id.toHexString(), username: plan.destination.username }
      : null,
    options: run.options,
    planFingerprint: plan?.fingerprint ?? null,
    stats: {
      documentsModified: 0,
      customerRefs: {},
      accountRefs: {},
      sourceCustomers: { matched: 0, modified: 0 },
      mergedAccounts: 0,
      steps: [],
      errors: [],
    },
    conflicts: plain(plan?.conflicts ?? []) as unknown[],
    mergedAccounts: [],
    convertedCustomers: [],
  };
}

function finish(record: HistoryRecord, run: RunFacts): HistoryRecord {
  const finishedAt = new Date();
  record.finishedAt = finishedAt.toISOString();
  record.durationMs = finishedAt.getTime() - run.startedAt.getTime();
  return record;
}
