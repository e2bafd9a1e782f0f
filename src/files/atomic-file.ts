import { randomBytes } from 'node:crypto';
import { constants, rmSync, type Stats } from 'node:fs';
import { access, type FileHandle, open, readlink, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { errorMessage, InterruptedError, RuntimeError } from '../shared/errors.js';
import { cleanupOnExit } from './exit-cleanup.js';

export interface ReplaceOptions {
  /** Permission bits for a file that does not exist yet (the umask applies); an existing file keeps its own. */
  mode?: number;
}

/**
 * Write a temp file beside the target, flush it, then rename over the target: readers see old or new, never
 * half. The target is the file a symlink points at (the link stays a link), and it keeps its mode and, where
 * the process may set them, its owner and group.
 */
export async function replaceFile(file: string, text: string, options: ReplaceOptions = {}): Promise<void> {
  await (await prepareReplacement(file, text, options)).commit();
}

/** A new version of a file, written and flushed beside it; nothing has changed for readers yet. */
export interface Replacement {
  /** Where the new version is (beside `target`), and the file it replaces (a symlink's target). */
  readonly temp: string;
  readonly target: string;
  /**
   * From now on the new version outlives an exit of this process: a commit record that names it finishes the
   * rename later (the dump back end's roll-forward), so it must not be removed on the way out.
   */
  keep(): void;
  /** Renames it over the file (the one moment readers see a change), then flushes the folder. */
  commit(): Promise<void>;
  /** Removes it, leaving the file as it was. */
  discard(): Promise<void>;
}

/**
 * The first half of replaceFile: the content is written (a large one as the chunks of an async iterable, which
 * may stop the write by throwing an InterruptedError) before anything is committed. On any failure the temp file
 * is removed and the file is as it was.
 */
export async function prepareReplacement(
  file: string,
  content: string | Uint8Array | AsyncIterable<string | Uint8Array>,
  options: ReplaceOptions = {},
): Promise<Replacement> {
  let temp: string | undefined;
  let forget = () => {};
  const failure = async (error: unknown) => {
    forget();
    if (temp !== undefined) await unlink(temp).catch(() => {});
    if (error instanceof InterruptedError) return error;
    return new RuntimeError(`Cannot write ${file}: ${errorMessage(error)}; the file was left as it was`, {
      cause: error,
    });
  };
  let target: string;
  try {
    target = (await linkChain(file)).at(-1) as string;
    const existing = await stat(target).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    const path = join(
      dirname(target),
      `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
    );
    temp = path;
    forget = cleanupOnExit(() => rmSync(path, { force: true }));
    // An existing file's content is never readable by more people than the file allows, not even as a temp.
    const handle = await open(path, 'wx', existing ? 0o600 : (options.mode ?? 0o666));
    try {
      if (existing) await keepOwnerAndMode(handle, existing);
      // Each writeFile continues where the previous one stopped.
      if (typeof content === 'string' || content instanceof Uint8Array)
        await handle.writeFile(content, 'utf8');
      else for await (const chunk of content) await handle.writeFile(chunk, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw await failure(error);
  }
  const path = temp;
  return {
    temp: path,
    target,
    keep() {
      forget();
    },
    async commit() {
      try {
        await rename(path, target);
      } catch (error) {
        throw await failure(error);
      }
      temp = undefined;
      forget();
      await syncFolder(dirname(target));
    },
    async discard() {
      await failure(undefined);
    },
  };
}

/**
 * The path as given (absolute), then each symlink's target in turn: the last one is where the content really
 * lives, and may not exist yet (a dangling link is written through, as a shell redirection would).
 */
export async function linkChain(file: string): Promise<string[]> {
  const chain = [resolve(file)];
  for (let hops = 0; hops < 40; hops++) {
    const path = chain.at(-1) as string;
    let link: string;
    try {
      link = await readlink(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // EINVAL: a file that is not a link; ENOENT, ENOTDIR: nothing there (yet).
      if (code === 'EINVAL' || code === 'ENOENT' || code === 'ENOTDIR') return chain;
      throw error;
    }
    // Relative to the folder the link really sits in, as the kernel resolves it.
    chain.push(resolve(await realpath(dirname(path)), link));
  }
  throw new Error(`too many levels of symbolic links at ${file}`);
}

/**
 * Why `file` could not be replaced, or undefined, creating nothing: its lock goes beside the path as given and
 * the temp file beside the link's target (the same folder unless `file` is a symlink), and each folder, or
 * the nearest existing ancestor it would be created in, must be a folder this process may write in.
 */
export async function replaceProblem(file: string): Promise<string | undefined> {
  const folders = new Set([dirname(resolve(file)), dirname((await linkChain(file)).at(-1) as string)]);
  for (const folder of folders) {
    const problem = await folderProblem(folder);
    if (problem) return problem;
  }
  return undefined;
}

async function folderProblem(folder: string): Promise<string | undefined> {
  let existing = folder;
  let stats: Stats | undefined;
  while (!stats) {
    try {
      stats = await stat(existing);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return `folder ${existing} cannot be looked at (${code})`;
      existing = dirname(existing);
    }
  }
  // The folder itself, or the ancestor that the missing folder would be created in.
  const where = existing === folder ? '' : `folder ${folder} cannot be created, `;
  if (!stats.isDirectory()) return `${where}${existing} is not a folder`;
  try {
    await access(existing, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (error) {
    return `${where}${existing} is not a writable folder (${(error as NodeJS.ErrnoException).code})`;
  }
}

async function keepOwnerAndMode(handle: FileHandle, existing: Stats): Promise<void> {
  const created = await handle.stat();
  // Only root (or an owner changing the group to one of its own) may do this; others keep their own ids.
  if (created.uid !== existing.uid || created.gid !== existing.gid) {
    await handle.chown(existing.uid, existing.gid).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPERM') throw error;
    });
  }
  // After the chown, which clears set-user/group-id bits.
  await handle.chmod(existing.mode & 0o7777);
}

/**
 * Makes the rename itself durable. Not every platform or file system can open or flush a folder (Windows
 * cannot); the rename has happened either way, so this is best effort.
 */
async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // See above: nothing to undo and nothing the user could do.
  }
}
