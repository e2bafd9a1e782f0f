import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Applied } from './apply.js';
import { describeStep } from './apply.js';
import { ExitCode, type MigrationError, RuntimeError, UsageError } from './errors.js';
import { canonical, plain } from './plain.js';
import type { CustomerRequest } from './resolve.js';
import type { MigrationOptions, Plan } from './scan.js';
import { replaceFile } from './store/snapshot.js';

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
    customerRefs: Record<string, { matched: number; modified: number }>;
    accountRefs: Record<string, { matched: number; modified: number }>;
    sourceCustomers: { matched: number; modified: number };
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
  const add = (bucket: Record<string, { matched: number; modified: number }>, key: string, r: Counts) => {
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

type Counts = { matched: number; modified: number };

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

/** Refuse early, before anything runs, a history file that a record could not be appended to. */
export async function readHistory(file: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError(
      `Cannot read history file ${file}: ${(error as Error).message}; choose another --output-file`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) {
    throw new UsageError(
      `History file ${file} is not a JSON array; move it aside or choose another --output-file (it was not changed)`,
    );
  }
  return parsed;
}

/** Read, add one record, write a temp file and rename it over: a crash never leaves a truncated history. */
export async function appendHistory(file: string, record: HistoryRecord): Promise<void> {
  const records = await readHistory(file);
  records.push(record);
  await replaceFile(file, `${JSON.stringify(records, null, 2)}\n`);
}

export interface HistoryLock {
  release(): Promise<void>;
}

/**
 * One migration at a time per history file. The lock is an exclusive create, so two runs cannot both
 * believe they hold it; it is released in a finally, so a failed run does not leave it behind.
 */
export async function lockHistory(file: string): Promise<HistoryLock> {
  const lockFile = `${file}.lock`;
  await mkdir(dirname(file), { recursive: true });
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lockFile, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new RuntimeError(`Cannot create lock ${lockFile}: ${(error as Error).message}`, {
        cause: error,
        context: { unrecordable: true },
      });
    }
    const holder = await readFile(lockFile, 'utf8').catch(() => 'unknown holder');
    // Not recorded: the history belongs to the run holding the lock.
    throw new RuntimeError(
      `Another migration is running (lock ${lockFile}: ${holder.trim()}); wait for it, or delete the lock if no migration is running`,
      { context: { unrecordable: true } },
    );
  }
  try {
    await handle.writeFile(`pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}\n`);
  } finally {
    await handle.close();
  }
  // Ctrl-C would otherwise skip every finally and leave a lock that blocks the next run. The transaction is
  // all or nothing either way; only a signal between commit and record can leave a commit unrecorded.
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(lockFile, { force: true });
    process.stderr.write(
      `Interrupted (${signal}) before the run finished: the migration committed entirely or not at all; run --preview to see which\n`,
    );
    process.exit(ExitCode.failed);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    release: async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await unlink(lockFile).catch(() => {});
    },
  };
}
