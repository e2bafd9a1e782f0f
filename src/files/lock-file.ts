import { readFileSync, rmSync } from 'node:fs';
import { lstat, open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { errorMessage, RuntimeError } from '../shared/errors.js';
import { cleanupOnExit } from './exit-cleanup.js';

export interface FileLock {
  readonly file: string;
  /** Removes the lock if it is still ours: one deleted by hand and taken by another run is left to that run. */
  release(): Promise<void>;
}

export function lockFileOf(file: string): string {
  return `${file}.lock`;
}

/**
 * One run at a time: the lock is an exclusive create, so two runs cannot both believe they hold it (a check
 * followed by a create could let both through). It names its holder for the run it keeps out, and is removed
 * even when a signal handler ends the process with process.exit.
 */
export async function acquireLock(lockFile: string): Promise<FileLock> {
  const holder = `pid ${process.pid} on ${hostname()} since ${new Date().toISOString()}\n`;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lockFile, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw await refusal(lockFile);
    throw new RuntimeError(
      `Cannot create lock ${lockFile}: ${errorMessage(error)}; check that its folder exists and is writable`,
      { cause: error, context: { unrecordable: true } },
    );
  }
  try {
    await handle.writeFile(holder);
  } catch (error) {
    // Created by us a moment ago, so ours to remove even though it does not name us.
    await unlink(lockFile).catch(() => {});
    throw new RuntimeError(`Cannot write lock ${lockFile}: ${errorMessage(error)}; check the disk`, {
      cause: error,
      context: { unrecordable: true },
    });
  } finally {
    await handle.close();
  }
  const forget = cleanupOnExit(() => {
    if (readFileSync(lockFile, 'utf8') === holder) rmSync(lockFile);
  });
  const release = async () => {
    forget();
    if ((await readFile(lockFile, 'utf8').catch(() => undefined)) === holder) {
      await unlink(lockFile).catch(() => {});
    }
  };
  return { file: lockFile, release };
}

/** Refuses as acquireLock would when the lock is held, without taking it (for checks that write nothing). */
export async function checkLockFree(lockFile: string): Promise<void> {
  const held = await lstat(lockFile).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw new RuntimeError(
        `Cannot check lock ${lockFile}: ${errorMessage(error)}; check its folder's permissions`,
        { cause: error },
      );
    },
  );
  if (held) throw await refusal(lockFile);
}

async function refusal(lockFile: string): Promise<RuntimeError> {
  // Not recorded: a run kept out by a lock has changed nothing, and the history may be the holder's to write.
  return new RuntimeError(
    `Another migration is running (lock ${lockFile}: ${await holderOf(lockFile)}); wait for it, or delete the lock if no migration is running`,
    { context: { unrecordable: true } },
  );
}

async function holderOf(lockFile: string): Promise<string> {
  // Only a regular file is read: a FIFO put in its place would block the read forever.
  const isFile = await lstat(lockFile).then(
    (stats) => stats.isFile(),
    () => false,
  );
  const text = isFile ? await readFile(lockFile, 'utf8').catch(() => '') : '';
  return text.trim() || 'unknown holder';
}
