import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import createDebug from 'debug';
import { aggregate, find, updateMany } from 'mingo';
import type { CollationSpec } from 'mingo/types';
import type { Modifier, PipelineStage } from 'mingo/updater';
import { BSON } from 'mongodb';
import { replaceFile, replaceProblem } from '../files/atomic-file.js';
import { acquireLock, checkLockFree, type FileLock, lockFileOf } from '../files/lock-file.js';
import { InterruptedError, RuntimeError, UsageError } from '../shared/errors.js';
import { parseExtendedJson, stringifyExtendedJson } from './ejson-file.js';
import type {
  AggregateOptions,
  Document,
  FindOptions,
  ReadOnlyStore,
  ServerFacts,
  Settled,
  Store,
  TransactionOptions,
  TransactionStore,
  Update,
  UpdateResult,
} from './types.js';

const log = createDebug('agm:snapshot');

type Collections = Map<string, Document[]>;

/**
 * A snapshot file is `{ "<collection>": [documents...] }` in Extended JSON. Reads accept relaxed or
 * canonical input without losing a number; writes are canonical so no Int32/Int64/Double/Date/ObjectId type
 * is lost.
 */
export function parseSnapshot(text: string, file: string): Collections {
  let parsed: unknown;
  try {
    parsed = parseExtendedJson(text);
  } catch (error) {
    throw new UsageError(
      `Snapshot ${file} is not valid Extended JSON: ${(error as Error).message}; export it again (see "Snapshot mode" in the README)`,
      { cause: error },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(
      `Snapshot ${file} must be an object of collections: { "users": [...], "jobs": [...] }`,
    );
  }
  const collections: Collections = new Map();
  for (const [name, documents] of Object.entries(parsed)) {
    if (!Array.isArray(documents)) {
      throw new UsageError(`Snapshot ${file}: collection "${name}" must be an array of documents`);
    }
    collections.set(name, documents);
  }
  return collections;
}

export function serializeSnapshot(collections: Collections): string {
  return stringifyExtendedJson(Object.fromEntries(collections));
}

class SnapshotReads {
  constructor(protected collections: Collections) {}

  async *find(collection: string, filter: Document, options: FindOptions = {}): AsyncIterable<Document> {
    const cursor = find<Document>(this.documents(collection), filter, options.projection);
    if (options.sort) cursor.sort(options.sort);
    if (options.limit !== undefined) cursor.limit(options.limit);
    for (const document of cursor.all()) yield copyOf(document);
  }

  async count(collection: string, filter: Document): Promise<number> {
    return find(this.documents(collection), filter).all().length;
  }

  async *aggregate(
    collection: string,
    pipeline: Document[],
    options: AggregateOptions = {},
  ): AsyncIterable<Document> {
    const collation = options.collation as CollationSpec | undefined;
    const documents = aggregate(this.documents(collection), pipeline, collation ? { collation } : {});
    for (const document of documents) yield copyOf(document);
  }

  async listCollections(): Promise<string[]> {
    return [...this.collections.keys()];
  }

  /** A snapshot file has no indexes, no shards and no cache to report; `indexes` undefined says so. */
  async inspect(): Promise<ServerFacts> {
    return { shardKeys: {}, unknown: [] };
  }

  protected documents(collection: string): Document[] {
    return this.collections.get(collection) ?? [];
  }
}

/** A server hands out copies: a document read before an update must not change when the update runs. */
function copyOf(document: Document): Document {
  return BSON.deserialize(BSON.serialize(document), { promoteValues: false });
}

class SnapshotWorkingCopy extends SnapshotReads implements TransactionStore {
  async updateMany(collection: string, filter: Document, update: Update): Promise<UpdateResult> {
    const { matchedCount, modifiedCount } = updateMany(
      this.documents(collection),
      filter,
      update as Modifier<Document> | PipelineStage[],
    );
    return { matched: matchedCount, modified: modifiedCount };
  }

  async replaceOne(collection: string, filter: Document, replacement: Document): Promise<UpdateResult> {
    const documents = this.documents(collection);
    const [match] = find(documents, filter).all();
    if (!match) return { matched: 0, modified: 0 };
    const replaced = { ...copyOf(replacement), _id: match._id };
    const modified = Buffer.compare(BSON.serialize(replaced), BSON.serialize(match)) === 0 ? 0 : 1;
    documents[documents.indexOf(match)] = replaced;
    return { matched: 1, modified };
  }

  /** Like a server: all or nothing here, and a duplicate _id is refused (E11000). */
  async insertMany(collection: string, documents: Document[]): Promise<void> {
    const existing = this.documents(collection);
    const ids = new Set(existing.map((document) => idKey(document._id)));
    for (const document of documents) {
      const key = idKey(document._id);
      if (document._id === undefined || ids.has(key)) {
        throw new RuntimeError(
          `E11000 duplicate key error collection: ${collection} dup key: { _id: ${key} }`,
        );
      }
      ids.add(key);
    }
    this.collections.set(collection, [...existing, ...documents.map(copyOf)]);
  }
}

function idKey(id: unknown): string {
  return BSON.EJSON.stringify({ id }, { relaxed: false });
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw cannotRead(file, error);
  }
}

function cannotRead(file: string, error: unknown): UsageError {
  return new UsageError(
    `Cannot read snapshot ${file}: ${(error as NodeJS.ErrnoException).code ?? error}; check the --snapshot path`,
    { cause: error },
  );
}

/**
 * For preview, writing nothing: an execution on this snapshot could replace it (see checkReplaceable) and
 * its lock is free.
 */
export async function checkSnapshotWritable(file: string): Promise<void> {
  await checkReplaceable(file);
  await checkLockFree(lockFileOf(file));
}

/**
 * The snapshot is a regular file this process may write, in a folder where its replacement can be created
 * (the new version is written beside it, then renamed over it). Refused before anything runs, not at commit.
 */
async function checkReplaceable(file: string): Promise<void> {
  const stats = await stat(file).catch((error) => {
    throw cannotRead(file, error);
  });
  const refuse = (problem: string, remedy: string): never => {
    throw new UsageError(`Snapshot ${file} ${problem}; ${remedy}`);
  };
  if (!stats.isFile()) refuse('is not a regular file', 'save it to a file and give that');
  await access(file, constants.W_OK).catch((error: NodeJS.ErrnoException) =>
    refuse(`is not writable (${error.code})`, 'make it writable, or run --preview, which only reads it'),
  );
  const problem = await replaceProblem(file);
  if (problem)
    refuse(`cannot be replaced: ${problem}`, 'make the folder writable, or work on a copy elsewhere');
}

export interface SnapshotOptions {
  /** Collections the run reads; a snapshot without one of them is refused (an empty array is fine). */
  requiredCollections?: readonly string[];
}

async function load(
  file: string,
  { requiredCollections = [] }: SnapshotOptions = {},
): Promise<{ collections: Collections; digest: string }> {
  const text = await readText(file);
  const collections = parseSnapshot(text, file);
  // On a server a missing collection is an empty one; in an export it is one that was forgotten, and the
  // rehearsal would show nothing to move where the real run moves documents.
  const missing = requiredCollections.filter((name) => !collections.has(name));
  if (missing.length > 0) {
    const names = missing.map((name) => `"${name}"`).join(', ');
    throw new UsageError(
      missing.length === 1
        ? `Snapshot ${file} has no ${names} collection; export it too (an empty array is fine)`
        : `Snapshot ${file} has no ${names} collections; export them too (an empty array is fine)`,
    );
  }
  return { collections, digest: digestOf(text) };
}

function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Said wherever a result is shown, so a rehearsal is never taken for a run against MongoDB. */
export function describeSnapshot(file: string): string {
  return `snapshot file ${file} (not a MongoDB server)`;
}

export class SnapshotReadOnlyStore extends SnapshotReads implements ReadOnlyStore {
  readonly description: string;

  protected constructor(
    protected readonly file: string,
    collections: Collections,
  ) {
    super(collections);
    this.description = describeSnapshot(file);
  }

  static async open(file: string, options: SnapshotOptions = {}): Promise<SnapshotReadOnlyStore> {
    return new SnapshotReadOnlyStore(file, (await load(file, options)).collections);
  }

  async close(): Promise<void> {}
}

export class SnapshotStore extends SnapshotReadOnlyStore implements Store {
  private constructor(
    file: string,
    collections: Collections,
    private readonly lock: FileLock,
  ) {
    super(file, collections);
  }

  /**
   * Holds `<file>.lock` from the first read until close (after the rename): a second run on the same file is
   * refused, so two runs never both start from one version of it and the later rename never drops a commit.
   */
  static override async open(file: string, options: SnapshotOptions = {}): Promise<SnapshotStore> {
    await checkReplaceable(file);
    const lock = await acquireLock(lockFileOf(file));
    try {
      return new SnapshotStore(file, (await load(file, options)).collections, lock);
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  override async close(): Promise<void> {
    await this.lock.release();
  }

  async assertTransactional(): Promise<void> {}

  /** An insert into a missing collection creates it in the working copy: nothing to prepare. */
  async ensureCollections(): Promise<void> {}

  /** A commit here is one rename, so its outcome is never in doubt; this reads the file as it now is. */
  async settle(collection: string, id: string): Promise<Settled> {
    const { collections } = await load(this.file);
    const found = find(collections.get(collection) ?? [], { _id: id }).all().length > 0;
    return found ? 'committed' : 'not-committed';
  }

  /**
   * The transaction works on a fresh copy of the file and replaces the file in one rename on commit, so a
   * failure at any point (including a crash while writing) leaves the original bytes in place.
   */
  async transaction<T>(
    work: (tx: TransactionStore) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const { collections, digest } = await load(this.file);
    const result = await work(new SnapshotWorkingCopy(collections));
    if (digestOf(await readText(this.file)) !== digest) {
      throw new RuntimeError(
        `Snapshot ${this.file} changed on disk during the run; nothing was written, run again`,
      );
    }
    // The rename is the commit: a stop asked for up to here (nothing is awaited in between) leaves the file as it was.
    if (options.signal?.aborted) {
      throw new InterruptedError(
        `Interrupted (${String(options.signal.reason)}) before the commit: the snapshot file was not changed`,
      );
    }
    options.onCommit?.();
    await replaceFile(this.file, serializeSnapshot(collections));
    this.collections = collections;
    log('committed %s', this.file);
    return result;
  }
}
