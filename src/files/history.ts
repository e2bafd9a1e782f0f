import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errorMessage, UsageError } from '../shared/errors.js';
import { redactValue } from '../shared/secrets.js';
import { linkChain, replaceFile, replaceProblem } from './atomic-file.js';
import { acquireLock, checkLockFree, lockFileOf } from './lock-file.js';

/** Refuse early, before anything runs, a history file that a record could not be appended to. */
export async function readHistory(file: string): Promise<unknown[]> {
  await checkHistoryPath(file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Absent: whether its folder can be made is checkHistoryFile's to say.
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
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

// Kernel file systems: a path there is a process's stdin, a terminal or a setting, never a history file.
const KERNEL_FILE_SYSTEMS = ['/proc', '/sys'];

/**
 * Refuses a path where no history file can be, symlinks followed: under /proc or /sys, or something other than
 * a regular file (a folder, a FIFO, a device). Opens nothing, so a pipe or a terminal is never read.
 */
async function checkHistoryPath(file: string): Promise<void> {
  const refuse = (problem: string) => refuseHistory(file, problem);
  const kernelRoot = (path: string) =>
    KERNEL_FILE_SYSTEMS.find((root) => path === root || path.startsWith(`${root}/`));
  // Before the path is touched at all: even reading a link there is looking into a process.
  const given = kernelRoot(resolve(file));
  if (given) refuse(`is under ${given}, which holds no files`);
  const chain = await linkChain(file).catch((error) => refuse(`cannot be resolved (${errorMessage(error)})`));
  const linked = chain.map(kernelRoot).find((root) => root !== undefined);
  if (linked) refuse(`leads into ${linked}, which holds no files`);
  const stats = await stat(chain.at(-1) as string).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    return refuse(`cannot be looked at (${error.code})`);
  });
  if (stats && !stats.isFile()) {
    refuse(`is not a regular file (${stats.isDirectory() ? 'a folder' : 'a FIFO, device or socket'})`);
  }
}

/**
 * For preview and for execute before it starts, writing nothing: the history file is absent or a readable JSON
 * array, its folder exists or can be created, and its lock is free. Refused as an execution would be.
 */
export async function checkHistoryFile(file: string): Promise<void> {
  await readHistory(file);
  const problem = await replaceProblem(file);
  if (problem) refuseHistory(file, `cannot be written: ${problem}`);
  await checkLockFree(lockFileOf(file));
}

function refuseHistory(file: string, problem: string): never {
  throw new UsageError(`History file ${file} ${problem}; choose another --output-file`);
}

/**
 * Read, add one record, write a temp file and rename it over: a crash never leaves a truncated history. A new
 * file is readable by its owner only: it holds whole account documents.
 */
export async function appendHistory(file: string, record: object): Promise<void> {
  const records = await readHistory(file);
  // A driver message quoting a connection string must not carry its password into the file.
  records.push(redactValue(record, []));
  await replaceFile(file, `${JSON.stringify(records, null, 2)}\n`, { mode: 0o600 });
}

export interface HistoryLock {
  release(): Promise<void>;
}

/** One migration at a time per history file; released in a finally, so a failed run does not leave it behind. */
export async function lockHistory(file: string): Promise<HistoryLock> {
  await mkdir(dirname(file), { recursive: true });
  return acquireLock(lockFileOf(file));
}
