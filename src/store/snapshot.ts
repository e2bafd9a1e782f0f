import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { setImmediate } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import createDebug from 'debug';
import { aggregate, find, Query, updateMany } from 'mingo';
import type { CollationSpec } from 'mingo/types';
import type { Modifier, PipelineStage } from 'mingo/updater';
import { BSON } from 'mongodb';
import { prepareReplacement, replaceProblem } from '../files/atomic-file.js';
import { acquireLock, type FileLock, lockFileOf } from '../files/lock-file.js';
import { InterruptedError, RuntimeError, UsageError } from '../shared/errors.js';
import { showValue } from '../shared/plain.js';
import { parseExtendedJson, reviveExtendedJson, stringifyExtendedJson } from './ejson-file.js';
import type { ReaderMessage } from './snapshot-worker.js';
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

export type Collections = Map<string, Document[]>;

/** Documents updated, projected or grouped by one call of mingo. */
export const BATCH = 1_000;
/**
 * Work between two turns of the event loop: long work on a large snapshot keeps it turning, so a Ctrl-C (or the
 * forced stop after it) is seen at once, and a transaction stops at the next turn.
 */
const TURN_MS = 20;
const CHUNK_CHARACTERS = 1 << 20;
/** Larger files are parsed in a worker thread (snapshot-worker.ts); 2 MB parses in about 50 ms here. */
const WORKER_FILE_BYTES = 2 * 1024 * 1024;

function notExtendedJson(file: string, message: string, cause?: unknown): UsageError {
  return new UsageError(
    `Snapshot ${file} is not valid Extended JSON: ${message}; export it again (see "Snapshot mode" in the README)`,
    cause === undefined ? {} : { cause },
  );
}

function notAnObject(file: string): UsageError {
  return new UsageError(
    `Snapshot ${file} must be an object of collections: { "users": [...], "jobs": [...] }`,
  );
}

function notAnArray(file: string, name: string): UsageError {
  return new UsageError(`Snapshot ${file}: collection "${name}" must be an array of documents`);
}

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
    throw notExtendedJson(file, (error as Error).message, error);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw notAnObject(file);
  const collections: Collections = new Map();
  for (const [name, documents] of Object.entries(parsed)) {
    if (!Array.isArray(documents)) throw notAnArray(file, name);
    collections.set(name, documents);
  }
  return collections;
}

export function serializeSnapshot(collections: Collections): string {
  return [...snapshotPieces(collections)].join('');
}

/**
 * The canonical Extended JSON of the whole file (as `stringifyExtendedJson` would write the object of
 * collections), one document at a time, so that writing a large snapshot lets the event loop turn between documents.
 */
function* snapshotPieces(collections: Collections): Generator<string> {
  if (collections.size === 0) {
    yield stringifyExtendedJson({});
    return;
  }
  let firstCollection = true;
  for (const [name, documents] of collections) {
    yield `${firstCollection ? '{\n' : ',\n'}  ${JSON.stringify(name)}: `;
    firstCollection = false;
    if (documents.length === 0) {
      yield '[]';
      continue;
    }
    for (const [index, document] of documents.entries()) {
      const text = stringifyExtendedJson(document).trimEnd().replace(/\n/g, '\n    ');
      yield `${index === 0 ? '[\n' : ',\n'}    ${text}`;
    }
    yield '\n  ]';
  }
  yield '\n}\n';
}

/** The file's text in chunks of about a megabyte: written as it is made, never held whole. */
async function* snapshotChunks(collections: Collections, pacer: Pacer): AsyncGenerator<string> {
  let pieces: string[] = [];
  let length = 0;
  for (const piece of snapshotPieces(collections)) {
    pieces.push(piece);
    length += piece.length;
    if (length >= CHUNK_CHARACTERS) {
      yield pieces.join('');
      pieces = [];
      length = 0;
    }
    if (pacer.due) await pacer.turn();
  }
  if (pieces.length > 0) yield pieces.join('');
}

export function interrupted(signal: AbortSignal, what = 'the snapshot file'): InterruptedError {
  return new InterruptedError(
    `Interrupted (${String(signal.reason)}) before the commit: ${what} was not changed`,
  );
}

/** Lets the event loop turn (signals, timers) every TURN_MS of work, and stops an interrupted transaction there. */
export class Pacer {
  private last = performance.now();

  constructor(
    private readonly signal?: AbortSignal,
    /** What an interruption leaves unchanged, as its message says. */
    private readonly what?: string,
  ) {}

  /** Checked between documents: cheap, and true when the loop should turn now. */
  get due(): boolean {
    return performance.now() - this.last >= TURN_MS;
  }

  async turn(): Promise<void> {
    await setImmediate();
    this.last = performance.now();
    if (this.signal?.aborted) throw interrupted(this.signal, this.what);
  }
}

function isAdditiveGroup(stage: Document): boolean {
  const spec = stage.$group;
  if (Object.keys(stage).length !== 1 || spec === null || typeof spec !== 'object') return false;
  return Object.entries(spec).every(
    ([field, accumulator]) =>
      field === '_id' ||
      (accumulator !== null &&
        typeof accumulator === 'object' &&
        Object.keys(accumulator).length === 1 &&
        '$sum' in accumulator),
  );
}

/** The top-level fields an inclusion projection keeps, or undefined for any other projection. */
export function projectedFields(projection: Document | undefined): Set<string> | undefined {
  if (!projection) return undefined;
  const fields = new Set<string>(['_id']);
  for (const [field, value] of Object.entries(projection)) {
    if (field === '_id' && (value === 0 || value === false)) fields.delete('_id');
    else if ((value === 1 || value === true) && !field.includes('.') && !field.startsWith('$'))
      fields.add(field);
    else return undefined;
  }
  return fields;
}

/**
 * The top-level fields a pipeline of `$group` stages reads (`"$field"` and `"$field.sub"` references), or undefined
 * when it may read more (another stage, `$$ROOT`): what a back end must decode of each document for it.
 */
function groupedFields(stages: Document[]): Set<string> | undefined {
  const fields = new Set<string>();
  const visit = (value: unknown): boolean => {
    if (typeof value === 'string') {
      if (value.startsWith('$$')) return false;
      if (value.startsWith('$')) fields.add(value.slice(1).split('.')[0] as string);
      return true;
    }
    if (value === null || typeof value !== 'object') return true;
    // A `$literal` holds data, not references.
    if (!Array.isArray(value) && Object.keys(value).length === 1 && '$literal' in value) return true;
    return Object.values(value).every(visit);
  };
  const onlyGroups =
    stages.length > 0 && stages.every((stage) => Object.keys(stage).length === 1 && stage.$group);
  return onlyGroups && stages.every((stage) => visit(stage.$group)) ? fields : undefined;
}

/**
 * Marks a batch whose documents a back end already projected to the `fields` it was asked for (as mingo's inclusion
 * projection does: `_id` first, then the document's order), so it is not projected again.
 */
export const PROJECTED = Symbol('projected');

function isProjected(batch: Document[]): boolean {
  return (batch as Document[] & { [PROJECTED]?: boolean })[PROJECTED] === true;
}

/** True when an inclusion projection keeps every key the sort needs. */
function keepsKeys(projection: Document, sort: Record<string, 1 | -1>): boolean {
  return Object.keys(sort).every((key) => (key === '_id' ? projection._id !== 0 : projection[key] === 1));
}

/** The _ids a filter asks for by equality (`{_id: x}` or `{_id: {$in: [...]}}`), and the rest of it. */
export function idLookup(filter: Document): { ids: unknown[]; rest: Document } | undefined {
  if (!Object.hasOwn(filter, '_id')) return undefined;
  const { _id: wanted, ...rest } = filter;
  const inList =
    wanted !== null &&
    typeof wanted === 'object' &&
    !Array.isArray(wanted) &&
    Object.keys(wanted).length === 1 &&
    Array.isArray(wanted.$in)
      ? (wanted.$in as unknown[])
      : undefined;
  const ids = inList ?? [wanted];
  // Only values whose equality is their key: a number may equal one of another type (1 and 1.0).
  return ids.every((id) => id instanceof BSON.ObjectId || typeof id === 'string') ? { ids, rest } : undefined;
}

export class SnapshotReads {
  /** Positions of the documents by _id, per collection, built on first use: what a server's _id index is. */
  protected idIndexes = new Map<string, Map<string, number>>();

  protected readonly pacer: Pacer;

  constructor(
    protected collections: Collections,
    signal?: AbortSignal,
    what?: string,
  ) {
    this.pacer = new Pacer(signal, what);
  }

  async *find(collection: string, filter: Document, options: FindOptions = {}): AsyncIterable<Document> {
    const { sort, limit, projection } = options;
    let left = limit ?? Number.POSITIVE_INFINITY;
    if (!sort) {
      for await (const batch of this.matchedBatches(collection, filter, projectedFields(projection))) {
        const taken = batch.length > left ? batch.slice(0, left) : batch;
        left -= taken.length;
        yield* this.copies(
          projection && !isProjected(batch) ? find(taken, {}, projection).all() : taken,
          this.decodesEachRead(collection),
        );
        if (left <= 0) return;
      }
      return;
    }
    const compact =
      limit === undefined
        ? await this.sortedCompactly(collection, filter, projectedFields(projection), sort)
        : undefined;
    if (compact) {
      for await (const batch of compact) yield* this.copies(batch, true);
      return;
    }
    // Sorting needs every match at once; a projection that keeps the sort keys is applied first, so that only
    // what is asked for is held (a journal's _ids and values, not whole documents).
    const early = projection && keepsKeys(projection, sort) ? projection : undefined;
    let matched: Document[] = [];
    for await (const batch of this.matchedBatches(collection, filter, projectedFields(early))) {
      const kept = early && !isProjected(batch) ? find(batch, {}, early).all() : batch;
      for (const document of kept) matched.push(document as Document);
    }
    matched = find(matched, {}).sort(sort).all() as Document[];
    if (limit !== undefined) matched = matched.slice(0, limit);
    for (let start = 0; start < matched.length; start += BATCH) {
      const batch = matched.slice(start, start + BATCH);
      yield* this.copies(
        projection && !early ? find(batch, {}, projection).all() : batch,
        this.decodesEachRead(collection),
      );
    }
  }

  async count(collection: string, filter: Document): Promise<number> {
    let total = 0;
    for await (const batch of this.matchedBatches(collection, filter)) total += batch.length;
    return total;
  }

  async *aggregate(
    collection: string,
    pipeline: Document[],
    options: AggregateOptions = {},
  ): AsyncIterable<Document> {
    const collation = options.collation as CollationSpec | undefined;
    // A leading $match is the part that reads the whole collection: it lets the loop turn, and uses the _id index.
    const [first, ...rest] = pipeline;
    const leading = !collation && first && Object.keys(first).length === 1 && first.$match;
    const stages = leading ? rest : pipeline;
    const filter = leading ? first.$match : {};
    const fields = groupedFields(stages);
    const [group] = stages;
    if (stages.length === 1 && group && isAdditiveGroup(group)) {
      yield* this.copies(await this.additiveGroup(collection, filter, fields, group));
      return;
    }
    const source = this.matchedBatches(collection, filter, fields);
    const documents: Document[] = [];
    for await (const batch of source) documents.push(...batch);
    yield* this.copies(
      stages.length === 0 ? documents : aggregate(documents, stages, collation ? { collation } : {}),
    );
  }

  /**
   * A $group whose accumulators all add up ($sum) gives the same groups run on batches and merged by adding:
   * the scan's and verify's counts per value, over every moved document, without blocking the event loop.
   */
  protected async additiveGroup(
    collection: string,
    filter: Document,
    fields: Set<string> | undefined,
    group: Document,
  ): Promise<Document[]> {
    const merged = new GroupSums();
    for await (const batch of this.matchedBatches(collection, filter, fields)) {
      for (const partial of aggregate(batch, [group])) merged.add(partial);
      if (this.pacer.due) await this.pacer.turn();
    }
    return merged.groups();
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

  /**
   * The documents matching `filter`, in natural order, a batch at a time: what every read is made of. `fields`
   * (what a projection keeps) lets a back end decode less; the documents are projected afterwards anyway.
   */
  protected async *matchedBatches(
    collection: string,
    filter: Document,
    _fields?: Set<string>,
  ): AsyncIterable<Document[]> {
    const documents = this.documents(collection);
    const positions = await this.matching(collection, filter);
    for (let start = 0; start < positions.length; start += BATCH) {
      yield positions.slice(start, start + BATCH).map((position) => documents[position] as Document);
    }
  }

  /**
   * Positions of the documents matching `filter`, in natural order: through the _id index when the filter asks
   * for _ids (verify and rollback read the journal's ids a chunk at a time), else by a scan that lets the loop turn.
   */
  protected async matching(collection: string, filter: Document): Promise<number[]> {
    const documents = this.documents(collection);
    const byId = idLookup(filter);
    const candidates = byId ? await this.positionsOf(collection, byId.ids) : undefined;
    const query = new Query(byId ? byId.rest : filter);
    const total = candidates?.length ?? documents.length;
    const found: number[] = [];
    for (let i = 0; i < total; i += 1) {
      const position = candidates ? (candidates[i] as number) : i;
      if (query.test(documents[position] as Document)) found.push(position);
      if (this.pacer.due) await this.pacer.turn();
    }
    return found;
  }

  protected async idIndex(collection: string): Promise<Map<string, number>> {
    const built = this.idIndexes.get(collection);
    if (built) return built;
    const index = new Map<string, number>();
    const documents = this.documents(collection);
    for (let position = 0; position < documents.length; position += 1) {
      const id = (documents[position] as Document)._id;
      if (id !== undefined) index.set(idKey(id), position);
      if (this.pacer.due) await this.pacer.turn();
    }
    this.idIndexes.set(collection, index);
    return index;
  }

  private async positionsOf(collection: string, ids: unknown[]): Promise<number[]> {
    const index = await this.idIndex(collection);
    const positions = new Set<number>();
    for (const id of ids) {
      const position = index.get(idKey(id));
      if (position !== undefined) positions.add(position);
    }
    return [...positions].sort((a, b) => a - b);
  }

  /**
   * A back end's own way to give a sorted find projected to `fields` (journaling a step: _ids by the value they
   * held), holding less than the documents; undefined: the documents are matched, held and sorted.
   */
  protected async sortedCompactly(
    _collection: string,
    _filter: Document,
    _fields: Set<string> | undefined,
    _sort: Record<string, 1 | -1>,
  ): Promise<AsyncIterable<Document[]> | undefined> {
    return undefined;
  }

  /**
   * True when every read of the collection decodes its documents anew (a dump's streamed ones): what a find gives
   * is the caller's own already, and is not copied again.
   */
  protected decodesEachRead(_collection: string): boolean {
    return false;
  }

  private async *copies(documents: Iterable<Document>, own = false): AsyncIterable<Document> {
    for (const document of documents) {
      yield own ? document : copyOf(document);
      if (this.pacer.due) await this.pacer.turn();
    }
  }
}

/** Partial results of an additive $group (batches of documents, or alike ones), merged by adding their sums. */
export class GroupSums {
  private readonly merged = new Map<string, Document>();

  add(partial: Document): void {
    const key = idKey(partial._id);
    const total = this.merged.get(key);
    if (!total) this.merged.set(key, partial);
    else for (const field of Object.keys(partial)) if (field !== '_id') total[field] += partial[field];
  }

  groups(): Document[] {
    return [...this.merged.values()];
  }
}

/** A server hands out copies: a document read before an update must not change when the update runs. */
export function copyOf(document: Document): Document {
  return BSON.deserialize(BSON.serialize(document), { promoteValues: false });
}

export class SnapshotWorkingCopy extends SnapshotReads implements TransactionStore {
  /**
   * Matched documents are updated a batch at a time, with the filter already applied (so the update is given
   * none: positional `$` updates, which the tool does not use, are not supported here).
   */
  async updateMany(collection: string, filter: Document, update: Update): Promise<UpdateResult> {
    const documents = this.documents(collection);
    const positions = await this.matching(collection, filter);
    let modified = 0;
    for (let start = 0; start < positions.length; start += BATCH) {
      const batch = positions.slice(start, start + BATCH);
      const subset = batch.map((position) => documents[position] as Document);
      // A pipeline update replaces the documents it changes in `subset`: they are put back where they were.
      modified += updateMany(subset, {}, update as Modifier<Document> | PipelineStage[]).modifiedCount;
      batch.forEach((position, index) => {
        documents[position] = subset[index] as Document;
      });
      if (this.pacer.due) await this.pacer.turn();
    }
    return { matched: positions.length, modified };
  }

  async replaceOne(collection: string, filter: Document, replacement: Document): Promise<UpdateResult> {
    const documents = this.documents(collection);
    const [position] = await this.matching(collection, filter);
    if (position === undefined) return { matched: 0, modified: 0 };
    const match = documents[position] as Document;
    const replaced = { ...copyOf(replacement), _id: match._id };
    const modified = Buffer.compare(BSON.serialize(replaced), BSON.serialize(match)) === 0 ? 0 : 1;
    documents[position] = replaced;
    return { matched: 1, modified };
  }

  /** Like a server: all or nothing here, and a duplicate _id is refused (E11000). */
  async insertMany(collection: string, documents: Document[]): Promise<void> {
    const index = await this.idIndex(collection);
    const keys = new Set<string>();
    for (const document of documents) {
      const key = idKey(document._id);
      if (document._id === undefined || index.has(key) || keys.has(key)) {
        throw new RuntimeError(
          `E11000 duplicate key error collection: ${collection} dup key: { _id: ${key} }`,
        );
      }
      keys.add(key);
    }
    let existing = this.collections.get(collection);
    if (!existing) {
      existing = [];
      this.collections.set(collection, existing);
    }
    for (const document of documents) {
      index.set(idKey(document._id), existing.length);
      existing.push(copyOf(document));
    }
  }
}

/** One key per _id value, type included (an ObjectId and its hex string are two ids, as on a server). */
export function idKey(id: unknown): string {
  if (id instanceof BSON.ObjectId) return `o${id.toHexString()}`;
  if (typeof id === 'string') return `s${id}`;
  return BSON.EJSON.stringify({ id }, { relaxed: false });
}

/**
 * A server never holds two documents with one _id; an export that does was edited or concatenated by hand,
 * and a rehearsal on it would fail only at execute ("matched 2 where the plan expected 1"). Refused at load.
 */
export async function assertUniqueIds(
  collections: Collections,
  file: string,
  signal?: AbortSignal,
): Promise<void> {
  const pacer = new Pacer(signal);
  for (const [name, documents] of collections) {
    const seen = new Set<string>();
    for (const document of documents) {
      if (pacer.due) await pacer.turn();
      if (document._id === undefined) continue;
      const key = idKey(document._id);
      if (seen.has(key)) {
        throw new UsageError(
          `Snapshot ${file}: collection "${name}" holds two documents with _id ${showValue(document._id, 'none')}; an _id is unique in a collection, so fix the export (keep one of them) and run again`,
        );
      }
      seen.add(key);
    }
  }
}

function cannotRead(file: string, error: unknown): UsageError {
  return new UsageError(
    `Cannot read snapshot ${file}: ${(error as NodeJS.ErrnoException).code ?? error}; check the --snapshot path`,
    { cause: error },
  );
}

/**
 * Why an execution could not replace this snapshot, or undefined: it must be a regular file this process may
 * write, in a folder where its replacement can be created (the new version is written beside it, then renamed
 * over it). Throws when the path is no snapshot at all (missing, not a regular file). Writes nothing.
 */
export async function snapshotReplaceProblem(file: string): Promise<string | undefined> {
  const stats = await stat(file).catch((error) => {
    throw cannotRead(file, error);
  });
  if (!stats.isFile()) {
    throw new UsageError(`Snapshot ${file} is not a regular file; save it to a file and give that`);
  }
  const denied = await access(file, constants.W_OK).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error.code,
  );
  if (denied) {
    return `Snapshot ${file} is not writable (${denied}); an execution replaces it: make it writable, or execute on a writable copy (--preview only reads it)`;
  }
  const problem = await replaceProblem(file);
  if (problem) {
    return `Snapshot ${file} cannot be replaced: ${problem}; make the folder writable, or work on a copy elsewhere`;
  }
  return undefined;
}

/** Refused before anything runs, not at commit. */
export async function checkSnapshotReplaceable(file: string): Promise<void> {
  const problem = await snapshotReplaceProblem(file);
  if (problem) throw new UsageError(problem);
}

export interface SnapshotOptions {
  /** Collections the run reads; a snapshot without one of them is refused (an empty array is fine). */
  requiredCollections?: readonly string[];
  /** Stops reading a large file when aborted (an interruption). */
  signal?: AbortSignal;
}

interface Loaded {
  collections: Collections;
  /** Of the file's bytes: the commit refuses a file changed on disk since. */
  digest: string;
}

async function load(
  file: string,
  { requiredCollections = [], signal }: SnapshotOptions = {},
): Promise<Loaded> {
  const { size } = await stat(file).catch((error) => {
    throw cannotRead(file, error);
  });
  const loaded = size > WORKER_FILE_BYTES ? await readInWorker(file, signal) : await readInThread(file);
  const { collections } = loaded;
  await assertUniqueIds(collections, file, signal);
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
  return loaded;
}

async function readInThread(file: string): Promise<Loaded> {
  const bytes = await readFile(file).catch((error) => {
    throw cannotRead(file, error);
  });
  return { collections: parseSnapshot(bytes.toString('utf8'), file), digest: digestOf(bytes) };
}

/**
 * Parses in a worker thread (snapshot-worker.ts) and revives one batch of documents per turn of the event
 * loop, asking for the next only then: the main thread never blocks for more than one batch.
 */
async function readInWorker(file: string, signal: AbortSignal | undefined): Promise<Loaded> {
  const pacer = new Pacer(signal);
  const worker = new Worker(new URL('./snapshot-worker.js', import.meta.url), { workerData: { file } });
  const inbox: ReaderMessage[] = [];
  let failure: unknown;
  let wake = () => {};
  worker.on('message', (message: ReaderMessage) => {
    inbox.push(message);
    wake();
  });
  worker.on('error', (error) => {
    failure = error;
    wake();
  });
  const onAbort = () => wake();
  signal?.addEventListener('abort', onAbort);
  const receive = async (): Promise<ReaderMessage> => {
    while (inbox.length === 0) {
      if (failure !== undefined) throw failure;
      if (signal?.aborted) throw interrupted(signal);
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    return inbox.shift() as ReaderMessage;
  };
  try {
    const collections: Collections = new Map();
    let digest = '';
    for (;;) {
      const message = await receive();
      switch (message.kind) {
        case 'digest':
          digest = message.digest;
          break;
        case 'collection':
          collections.set(message.name, []);
          break;
        case 'documents':
          (collections.get(message.name) as Document[]).push(
            ...(reviveExtendedJson(message.documents) as Document[]),
          );
          break;
        case 'done':
          return { collections, digest };
        case 'failure':
          throw readerFailure(file, message);
      }
      await pacer.turn();
      worker.postMessage('next');
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await worker.terminate();
  }
}

function readerFailure(file: string, message: Extract<ReaderMessage, { kind: 'failure' }>): UsageError {
  switch (message.problem) {
    case 'read':
      return cannotRead(file, Object.assign(new Error(message.code), { code: message.code }));
    case 'invalid':
      return notExtendedJson(file, message.message);
    case 'not-object':
      return notAnObject(file);
    case 'not-array':
      return notAnArray(file, message.name);
  }
}

function digestOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The file's digest as it is now, read as a stream: a large file is hashed without blocking. */
async function digestOfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash).catch((error) => {
    throw cannotRead(file, error);
  });
  return hash.digest('hex');
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
    await checkSnapshotReplaceable(file);
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
   * failure at any point (including a crash while writing) leaves the original bytes in place. Everything
   * before the rename lets the event loop turn and stops there when interrupted.
   */
  async transaction<T>(
    work: (tx: TransactionStore) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const { signal } = options;
    const { collections, digest } = await load(this.file, { signal });
    const result = await work(new SnapshotWorkingCopy(collections, signal));
    if (signal?.aborted) throw interrupted(signal);
    // The new version is written beside the file first; until the rename, the file is as it was.
    const replacement = await prepareReplacement(this.file, snapshotChunks(collections, new Pacer(signal)));
    try {
      if ((await digestOfFile(this.file)) !== digest) {
        throw new RuntimeError(
          `Snapshot ${this.file} changed on disk during the run; nothing was written, run again`,
        );
      }
      // The rename is the commit: a stop asked for up to here (nothing is awaited in between) leaves the file as
      // it was.
      if (signal?.aborted) throw interrupted(signal);
    } catch (error) {
      await replacement.discard();
      throw error;
    }
    options.onCommit?.();
    await replacement.commit();
    this.collections = collections;
    this.idIndexes = new Map();
    log('committed %s', this.file);
    return result;
  }
}
