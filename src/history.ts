import { rmSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { replaceFile } from './atomic-file.js';
import { ExitCode, UsageError } from './errors.js';
import { acquireLock, lockFileOf } from './lock-file.js';
import type { HistoryRecord } from './record.js';

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

/**
 * Read, add one record, write a temp file and rename it over: a crash never leaves a truncated history. A new
 * file is readable by its owner only: it holds whole account documents.
 */
export async function appendHistory(file: string, record: HistoryRecord): Promise<void> {
  const records = await readHistory(file);
  records.push(record);
  await replaceFile(file, `${JSON.stringify(records, null, 2)}\n`, { mode: 0o600 });
}

export interface HistoryLock {
  release(): Promise<void>;
}

/** One migration at a time per history file; released in a finally, so a failed run does not leave it behind. */
export async function lockHistory(file: string): Promise<HistoryLock> {
  const lockFile = lockFileOf(file);
  await mkdir(dirname(file), { recursive: true });
  const lock = await acquireLock(lockFile);
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
      await lock.release();
    },
  };
}
