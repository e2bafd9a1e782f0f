import { constants, type Stats } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { UsageError } from '../shared/errors.js';
import { linkChain, replaceFile } from './atomic-file.js';

/**
 * The last line of every report this tool writes (an HTML comment: Markdown viewers do not show it). An existing
 * file that ends with it is an earlier report, which a new preview may replace; any other file is someone's.
 */
export const REPORT_MARK =
  '<!-- written by migrateCustomerData.js --preview --report; a later preview may replace this file -->';

/** A file the run reads or owns (the snapshot, the history file, their locks): a report never replaces it. */
export interface GuardedFile {
  path: string;
  /** What it is, as the refusal names it: "the snapshot file", "the history file's lock". */
  what: string;
  /** A folder whose every file is guarded (a data set made of files). */
  folder?: boolean;
}

/**
 * Refuses, before anything runs, a report path that would destroy something: a file the run reads or owns (by
 * path, through symlinks, or the same file under another name), anything that is not a regular file, and an
 * existing file this tool did not write unless `force`. The folder must already exist and be writable.
 */
export async function checkReportFile(file: string, guarded: GuardedFile[], force: boolean): Promise<void> {
  const refuse = (problem: string, remedy = 'give another file, e.g. ticket.md'): never => {
    throw new UsageError(`--report ${file} ${problem}; ${remedy}`);
  };
  const target = await realTarget(file);
  const existing = await statOrUndefined(target);
  for (const guard of guarded) {
    const guardTarget = await realTarget(guard.path);
    const guardStats = await statOrUndefined(guardTarget);
    const same =
      guardTarget === target ||
      (existing !== undefined &&
        guardStats !== undefined &&
        existing.dev === guardStats.dev &&
        existing.ino === guardStats.ino);
    if (same) refuse(`is ${guard.what}: the report would replace it`);
    if (guard.folder && target.startsWith(`${guardTarget}${sep}`)) {
      refuse(`is inside ${guard.what}: the report would add to it or replace one of its files`);
    }
  }
  if (existing) {
    if (!existing.isFile()) refuse('is not a regular file (a folder, a FIFO or a device)');
    if (!force && !(await endsWithMark(target))) {
      refuse(
        'already exists and is not a report this tool wrote',
        'give a new file name, or add --force to replace it',
      );
    }
  }
  const folder = dirname(target);
  const folderStats = await statOrUndefined(folder);
  if (!folderStats?.isDirectory()) refuse(`cannot be written: folder ${folder} does not exist`);
  await access(folder, constants.W_OK | constants.X_OK).catch((error: NodeJS.ErrnoException) =>
    refuse(`cannot be written: folder ${folder} is not writable (${error.code})`),
  );
}

/** Written atomically (a temp file beside it, renamed over it), ending with the mark. */
export function writeReport(file: string, markdown: string): Promise<void> {
  return replaceFile(file, `${markdown.trimEnd()}\n\n${REPORT_MARK}\n`);
}

async function realTarget(file: string): Promise<string> {
  const chain = await linkChain(file).catch(() => [resolve(file)]);
  return chain.at(-1) as string;
}

function statOrUndefined(path: string): Promise<Stats | undefined> {
  return stat(path).catch(() => undefined);
}

/** Reads only the end of the file: an arbitrary file given by mistake may be large. */
async function endsWithMark(file: string): Promise<boolean> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return false;
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, REPORT_MARK.length + 16);
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(length), 0, length, size - length);
    return buffer.subarray(0, bytesRead).toString('utf8').trimEnd().endsWith(REPORT_MARK);
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}
