import { constants } from 'node:fs';
import { access, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, gunzipSync } from 'node:zlib';
import createDebug from 'debug';
import { aggregate, find, Query, updateMany } from 'mingo';
import type { Modifier, PipelineStage } from 'mingo/updater';
import { BSON } from 'mongodb';
import {
  linkChain,
  prepareReplacement,
  type Replacement,
  replaceFile,
  replaceProblem,
} from '../files/atomic-file.js';
import { acquireLock, type FileLock, lockFileOf } from '../files/lock-file.js';
import { RuntimeError, UsageError } from '../shared/errors.js';
import {
  decodeFields,
  type RawTest,
  type RawUpdate,
  rawElement,
  rawFieldsKey,
  rawIdKey,
  rawTest,
  rawUpdate,
} from './bson-raw.js';
import {
  decodeDocument,
  isGzip,
  type RawDocument,
  readBsonAt,
  readBsonBatches,
  readBsonFile,
} from './bson-stream.js';
import {
  assertUniqueIds,
  BATCH,
  type Collections,
  copyOf,
  GroupSums,
  idKey,
  idLookup,
  interrupted,
  Pacer,
  PROJECTED,
  SnapshotReads,
  SnapshotWorkingCopy,
} from './snapshot.js';
import type {
  Document,
  IndexInfo,
  ReadOnlyStore,
  ServerFacts,
  Settled,
  Store,
  TransactionOptions,
  TransactionStore,
  Update,
  UpdateResult,
} from './types.js';

const log = createDebug('agm:dump');

/**
 * Collections read whole into memory: the accounts (a few thousand documents, read by every plan step). Every
 * other collection (jobs, invoices, the journal) is read as a stream from its file each time it is asked for.
 */
const HELD = new Set(['users']);
const BSON_FILE = /^(.+)\.bson(\.gz)?$/;
/** Written before the first rename of a commit, removed after the last: its presence means renames to finish. */
const COMMIT_RECORD = '.agm-dump-commit.json';
/** The temp files prepareReplacement writes beside a file (`.<name>.<pid>.<random>.tmp`). */
const TEMP_FILE = /^\..+\.(bson|json)(\.gz)?\.\d+\.[0-9a-f]{8}\.tmp$/;
const WRITE_CHUNK = 1024 * 1024;

const WHAT = 'the dump';
/** Passes over files at least this large say how far they are, on a terminal. */
const PROGRESS_BYTES = 32 * 1024 * 1024;
const PROGRESS_EVERY_MS = 5_000;

/** A mongodump folder of one database: its collections' BSON files (`.bson`, or `.bson.gz` for `--gzip`). */
export interface DumpLayout {
  /** The database folder (the one given, or the one database folder inside it). */
  dir: string;
  gzip: boolean;
  /** Collection name -> the file its documents are read from. */
  files: Map<string, string>;
}

/** Said wherever a result is shown, so a rehearsal is never taken for a run against MongoDB. */
export function describeDump(dir: string): string {
  return `mongodump folder ${dir} (not a MongoDB server)`;
}

function notADump(dir: string): UsageError {
  return new UsageError(
    `${dir} is not a mongodump folder: it holds no <collection>.bson (or .bson.gz) file, nor one database folder holding them; give the folder mongodump wrote (--out) or its database folder`,
  );
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw notADump(dir);
    throw new UsageError(`Cannot read dump folder ${dir}: ${code ?? String(error)}; check the --dump path`, {
      cause: error,
    });
  }
}

/** The collection files among a folder's names; `system.*` collections are the server's own. */
function collectionFiles(dir: string, names: string[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of names) {
    const match = BSON_FILE.exec(name);
    const collection = match?.[1];
    if (!collection || collection.startsWith('system.') || name.startsWith('.')) continue;
    const earlier = files.get(collection);
    if (earlier) {
      throw new UsageError(
        `Dump ${dir} holds collection "${collection}" twice (${basename(earlier)} and ${name}); keep one of them`,
      );
    }
    files.set(collection, join(dir, name));
  }
  return files;
}

/**
 * The folder given, or the parent mongodump writes (`--out`, one folder per database): one database folder in it
 * is taken; several are refused, naming them (`--oplog`'s oplog.bson at the top is not a database).
 */
export async function findDump(dir: string): Promise<DumpLayout> {
  const names = await entries(dir);
  const files = collectionFiles(dir, names);
  if (files.size === 0 || (files.size === 1 && files.has('oplog'))) {
    const databases: string[] = [];
    for (const name of names) {
      const folder = join(dir, name);
      if (name.startsWith('.') || !(await stat(folder).catch(() => undefined))?.isDirectory()) continue;
      if (collectionFiles(folder, await entries(folder)).size > 0) databases.push(name);
    }
    if (databases.length === 1) return findDump(join(dir, databases[0] as string));
    if (databases.length > 1) {
      throw new UsageError(
        `${dir} holds the dumps of ${databases.length} databases (${databases.join(', ')}); give the one to use, e.g. --dump ${join(dir, databases[0] as string)}`,
      );
    }
    throw notADump(dir);
  }
  const zipped = [...files.values()].filter(isGzip).length;
  if (zipped > 0 && zipped < files.size) {
    throw new UsageError(
      `Dump ${dir} mixes .bson and .bson.gz files; take it again with or without --gzip, not both`,
    );
  }
  return { dir, gzip: zipped > 0, files };
}

function metadataFileOf(bsonFile: string): string {
  return bsonFile.replace(/\.bson(\.gz)?$/, '.metadata.json$1');
}

/** Renames a commit recorded and may not have finished: the new file (beside its target) for each. */
interface CommitRecord {
  renames: { temp: string; target: string }[];
}

async function readCommitRecord(dir: string): Promise<CommitRecord | undefined> {
  const text = await readFile(join(dir, COMMIT_RECORD), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  return text === undefined ? undefined : (JSON.parse(text) as CommitRecord);
}

const exists = (file: string) =>
  access(file, constants.F_OK).then(
    () => true,
    () => false,
  );

/**
 * A commit record left by a run that stopped between its first and last rename: every new file was complete
 * and flushed before the record was written, so the renames are finished (rolled forward). Temp files without a
 * record are a commit that never happened: removed. Runs under the dump's lock.
 */
async function recover(dir: string): Promise<void> {
  const record = await readCommitRecord(dir);
  if (record) {
    for (const { temp, target } of record.renames) if (await exists(temp)) await rename(temp, target);
    await unlink(join(dir, COMMIT_RECORD));
    log('finished the renames of an interrupted commit in %s', dir);
  }
  for (const name of await entries(dir)) if (TEMP_FILE.test(name)) await unlink(join(dir, name));
}

/**
 * What a reader sees while a commit record is pending: the new files, as the renames will leave them (a preview
 * never writes, so it does not finish them).
 */
async function committedView(layout: DumpLayout): Promise<DumpLayout> {
  const record = await readCommitRecord(layout.dir);
  if (!record) return layout;
  const files = new Map<string, string>();
  for (const [collection, file] of layout.files) {
    const real = (await linkChain(file)).at(-1);
    const pending = record.renames.find((entry) => entry.target === real);
    files.set(collection, pending && (await exists(pending.temp)) ? pending.temp : file);
  }
  for (const { temp, target } of record.renames) {
    const match = BSON_FILE.exec(basename(target));
    if (match?.[1] && !files.has(match[1]) && (await exists(temp))) files.set(match[1], temp);
  }
  return { ...layout, files };
}

/** A filter, decided on a document's bytes where it can be (bson-raw.ts), by mingo otherwise. */
interface Filter {
  query: Query;
  raw?: RawTest;
  /** The only _ids it can match (a lookup by _id), by idKey: other documents are passed over at once. */
  ids?: Set<string>;
}

function filterOf(filter: Document): Filter {
  const raw = rawTest(filter);
  const byId = idLookup(filter);
  return {
    query: new Query(filter),
    ...(raw ? { raw } : {}),
    ...(byId ? { ids: new Set(byId.ids.map(idKey)) } : {}),
  };
}

interface Changed {
  document: Document;
  modified: boolean;
}

/** The document's top-level `fields`, `_id` first then in its order, as mingo's inclusion projection gives them. */
function projected(state: State, fields: Set<string>): Document {
  const fromBytes = state.bytes && !state.document ? decodeFields(state.bytes, fields) : undefined;
  // Decoded from the bytes it holds only those fields, in the document's order: as they are when _id leads.
  if (fromBytes && (!('_id' in fromBytes) || Object.keys(fromBytes)[0] === '_id')) return fromBytes;
  const source = fromBytes ?? documentOf(state);
  const entries = Object.entries(source).filter(([field]) => fields.has(field) && field !== '_id');
  return Object.fromEntries([
    ...(fields.has('_id') && '_id' in source ? [['_id', source._id]] : []),
    ...entries,
  ]);
}

/**
 * Offsets of documents in a file, ascending (a pass reads them in that order): 8 bytes a document, in one
 * growing array, not an object each.
 */
class Offsets {
  private values = new Float64Array(1024);
  length = 0;

  push(offset: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length] = offset;
    this.length += 1;
  }

  has(offset: number): boolean {
    let low = 0;
    let high = this.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const value = this.values[middle] as number;
      if (value === offset) return true;
      if (value < offset) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }

  toArray(): number[] {
    return Array.from(this.values.subarray(0, this.length));
  }
}

/** The types whose equality is their bytes' (a sort groups equal values): what sortedByValue keeps as bytes. */
const SORTED_TYPES = new Set([0x07, 0x02]);
const ID_NAME = Buffer.from('_id', 'utf8');
const ID_PREFIX = Buffer.from('_id\0', 'utf8');

/**
 * _id values as their BSON bytes (type, then value) one after the other in one growing buffer: what a sorted
 * find holds per document.
 */
class ByteList {
  private bytes = Buffer.alloc(64 * 1024);
  private length = 0;

  push(type: number, source: Buffer, start: number, end: number): void {
    const needed = this.length + 1 + end - start;
    if (needed > this.bytes.length) {
      const grown = Buffer.alloc(Math.max(needed, this.bytes.length * 2));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    this.bytes[this.length] = type;
    source.copy(this.bytes, this.length + 1, start, end);
    this.length = needed;
  }

  /** Each _id with the element after it (`{ _id, <field>: value }`), decoded as a find's projection gives it. */
  *documents(after: Buffer): Iterable<Document> {
    let position = 0;
    while (position < this.length) {
      const type = this.bytes[position] as number;
      const size = type === 0x07 ? 12 : 4 + this.bytes.readInt32LE(position + 1);
      const document = Buffer.alloc(4 + 1 + ID_PREFIX.length + size + after.length + 1);
      document.writeInt32LE(document.length, 0);
      document[4] = type;
      ID_PREFIX.copy(document, 5);
      this.bytes.copy(document, 5 + ID_PREFIX.length, position + 1, position + 1 + size);
      after.copy(document, 5 + ID_PREFIX.length + size);
      yield BSON.deserialize(document, { promoteValues: false });
      position += 1 + size;
    }
  }
}

const filterKey = (filter: Document): string => BSON.EJSON.stringify(filter, { relaxed: false });

/** Offsets a read records for a later write of the same filter, at most: past it, the write makes its own pass. */
const RECORDED_OFFSETS = 4 * 1024 * 1024;

/**
 * A transaction's writes to one streamed collection, in order: applied to each document as it is read. A write
 * keeps the offsets of the file's documents it matched: on every later pass the writes before it leave those
 * documents as they were then, so it matches the same ones, and the others need no test.
 */
type Write =
  | { filter: Filter; raw?: RawUpdate; change: (document: Document) => Changed; matched?: Offsets }
  | { inserted: Buffer[] };
type Writes = Map<string, Write[]>;

/**
 * One document on its way through a pass: its bytes while they say what it is (as read, or changed in place),
 * its decoded form once something needed it.
 */
interface State {
  bytes?: Buffer;
  document?: Document;
  file: string;
  offset: number;
  /** A write matched it: the commit writes it anew. */
  touched: boolean;
  id?: string;
  /** Inserted by this transaction, not read from the file. */
  inserted?: boolean;
}

function documentOf(state: State): Document {
  state.document ??= decodeDocument({ bytes: state.bytes as Buffer, offset: state.offset }, state.file);
  return state.document;
}

/** The document's _id as idKey spells it, worked out once per document and pass. */
function idOf(state: State): string | undefined {
  if (state.id === undefined) {
    const fromBytes = state.bytes && !state.document ? rawIdKey(state.bytes) : undefined;
    state.id = fromBytes ?? idKey(documentOf(state)._id);
  }
  return state.id;
}

function matches(state: State, filter: Filter): boolean {
  if (filter.ids) {
    const id = idOf(state);
    if (id !== undefined && !filter.ids.has(id)) return false;
  }
  const decided = state.bytes && filter.raw ? filter.raw(state.bytes) : undefined;
  return decided ?? filter.query.test(documentOf(state));
}

/** Applies one write to a document it matched; true when the document changed. */
function change(state: State, write: Extract<Write, { filter: Filter }>): boolean {
  state.touched = true;
  if (state.bytes && write.raw) {
    const modified = write.raw(state.bytes);
    if (modified !== undefined) {
      if (modified) state.document = undefined;
      return modified;
    }
  }
  const result = write.change(documentOf(state));
  state.document = result.document;
  if (result.modified) state.bytes = undefined;
  return result.modified;
}

/**
 * A group's partial result for one document, as it is for `count` documents alike: its sums multiplied, when they
 * are whole numbers (then exactly what adding them one by one gives); undefined otherwise.
 */
function timesOf(partial: Document, count: number): Document | undefined {
  const times: Document = { _id: partial._id };
  for (const [field, value] of Object.entries(partial)) {
    if (field === '_id') continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value * count)) return undefined;
    times[field] = value * count;
  }
  return times;
}

function updated(document: Document, update: Update): Changed {
  const one = [document];
  // A pipeline update replaces the document in `one`.
  const { modifiedCount } = updateMany(one, {}, update as Modifier<Document> | PipelineStage[]);
  return { document: one[0] as Document, modified: modifiedCount > 0 };
}

/** The document after the writes from `from` on. */
function applyWrites(writes: Write[], from: number, state: State): State {
  for (let i = from; i < writes.length; i += 1) {
    const write = writes[i] as Write;
    if ('inserted' in write) continue;
    const hit =
      write.matched && !state.inserted ? write.matched.has(state.offset) : matches(state, write.filter);
    if (hit) change(state, write);
  }
  return state;
}

/** Documents counted by a finished pass, per file: the next pass's time left. */
type Counted = Map<string, number>;

/** Every PROGRESS_EVERY_MS of a pass over a large file: documents read, the rate, and the time left when known. */
class PassProgress {
  private readonly started = performance.now();
  private last = this.started;

  constructor(
    private readonly file: string,
    private readonly size: number,
    private readonly report: (line: string) => void,
    private readonly known: number | undefined,
  ) {}

  static async of(
    file: string,
    report: ((line: string) => void) | undefined,
    counted: Counted,
  ): Promise<PassProgress | undefined> {
    if (!report) return undefined;
    const size = (await stat(file).catch(() => undefined))?.size ?? 0;
    return size >= PROGRESS_BYTES ? new PassProgress(file, size, report, counted.get(file)) : undefined;
  }

  tick(documents: number, offset: number): void {
    const now = performance.now();
    if (now - this.last < PROGRESS_EVERY_MS) return;
    this.last = now;
    const seconds = (now - this.started) / 1000;
    const rate = documents / seconds;
    // The share done: from a count of an earlier pass, else (plain BSON) from the bytes read.
    const done = this.known ? documents / this.known : isGzip(this.file) ? undefined : offset / this.size;
    const left =
      done && done > 0 ? ` about ${Math.max(0, Math.round(seconds / done - seconds))} s left,` : '';
    this.report(
      `Reading ${basename(this.file)}: ${documents.toLocaleString('en-US')} documents, ${Math.round(rate).toLocaleString('en-US')}/s,${left} ${Math.round(seconds)} s so far`,
    );
  }
}

/**
 * The streamed collections of a dump, as a transaction with these pending writes sees them (none: as the files
 * are). Each read is a pass over the file, letting the event loop turn.
 */
class Streams {
  constructor(
    private readonly layout: DumpLayout,
    private readonly pacer: Pacer,
    private readonly writes: Writes = new Map(),
    private readonly progress?: (line: string) => void,
    private readonly counted: Counted = new Map(),
  ) {}

  private readonly idIndexes = new Map<string, Map<string, number>>();

  streams(collection: string): boolean {
    return !HELD.has(collection);
  }

  /** _ids (idKey) of the documents this transaction inserted, per collection: a duplicate is refused without a read. */
  private readonly insertedIds = new Map<string, Set<string>>();

  /** Every document of the collection as this transaction sees it: the file's, then those it inserted. */
  async *states(collection: string): AsyncIterable<State[]> {
    yield* this.fileStates(collection);
    yield this.insertedStates(collection);
  }

  /** A pass over the file, a read chunk's documents at a time. */
  private async *fileStates(collection: string): AsyncIterable<State[]> {
    const file = this.layout.files.get(collection);
    const writes = this.writes.get(collection) ?? [];
    if (!file) return;
    log('a pass over %s', file);
    const progress = await PassProgress.of(file, this.progress, this.counted);
    let read = 0;
    for await (const raws of readBsonBatches(file)) {
      yield this.statesOf(writes, file, raws);
      read += raws.length;
      if (this.pacer.due) {
        progress?.tick(read, (raws.at(-1) as RawDocument).offset);
        await this.pacer.turn();
      }
    }
    this.counted.set(file, read);
  }

  private statesOf(writes: Write[], file: string, raws: RawDocument[]): State[] {
    const states: State[] = new Array(raws.length);
    for (let i = 0; i < raws.length; i += 1) {
      const { bytes, offset } = raws[i] as RawDocument;
      states[i] = applyWrites(writes, 0, { bytes, file, offset, touched: false });
    }
    return states;
  }

  private insertedStates(collection: string): State[] {
    const writes = this.writes.get(collection) ?? [];
    const states: State[] = [];
    for (const [index, write] of writes.entries()) {
      if (!('inserted' in write)) continue;
      for (const bytes of write.inserted) {
        const state = {
          bytes: Buffer.from(bytes),
          file: `${collection} (inserted)`,
          offset: 0,
          touched: true,
          inserted: true,
        };
        states.push(applyWrites(writes, index + 1, state));
      }
    }
    return states;
  }

  /**
   * The documents a filter may match: those of its `_id`s when it asks for some (verify and rollback read a journal
   * chunk's 1,000 ids at a time), read where the _id index puts them, in natural order, instead of a pass over the
   * whole file per chunk; every document otherwise. A `.gz` file cannot be read at an offset: a pass.
   */
  private async *candidates(collection: string, filter: Document): AsyncIterable<State[]> {
    yield* this.fileCandidates(collection, filter);
    yield this.insertedStates(collection);
  }

  /** The candidates among the file's documents (not those this transaction inserted). */
  private async *fileCandidates(collection: string, filter: Document): AsyncIterable<State[]> {
    const file = this.layout.files.get(collection);
    const byId = idLookup(filter);
    if (!byId || !file || isGzip(file)) {
      yield* this.fileStates(collection);
      return;
    }
    const index = await this.idIndex(file);
    const offsets = new Set<number>();
    for (const id of byId.ids) {
      const offset = index.get(idKey(id));
      if (offset !== undefined) offsets.add(offset);
    }
    yield* this.fileStatesAt(
      collection,
      file,
      [...offsets].sort((a, b) => a - b),
    );
  }

  /** The file's documents at these offsets (ascending), as this transaction sees them. */
  private async *fileStatesAt(collection: string, file: string, offsets: number[]): AsyncIterable<State[]> {
    const writes = this.writes.get(collection) ?? [];
    for await (const raws of readBsonAt(file, offsets)) {
      yield this.statesOf(writes, file, raws);
      if (this.pacer.due) await this.pacer.turn();
    }
  }

  /**
   * The file documents the last complete read of a filter matched (journaling a step reads what its update then
   * changes), while no write came after it: a write of the same filter tests only those, not the whole file.
   */
  private recent?: { collection: string; key: string; writes: number; offsets: Offsets };

  /** Where a read of `filter` records the file documents it matches; undefined when the read is cheap anyway. */
  private recorder(collection: string, filter: Document): Offsets | undefined {
    const file = this.layout.files.get(collection);
    if (!file || isGzip(file) || idLookup(filter)) return undefined;
    return new Offsets();
  }

  /** Kept when no write came while the read went on (a later write would have changed what it read). */
  private recorded(collection: string, filter: Document, offsets: Offsets | undefined, writes: number): void {
    if (!offsets || this.writeCount(collection) !== writes) return;
    this.recent = { collection, key: filterKey(filter), writes, offsets };
  }

  private writeCount(collection: string): number {
    return this.writes.get(collection)?.length ?? 0;
  }

  /** The candidates of a write: the documents a read of the same filter found, when nothing changed since. */
  private async *writeCandidates(collection: string, filter: Document): AsyncIterable<State[]> {
    const recent = this.recent;
    const file = this.layout.files.get(collection);
    if (
      !recent ||
      !file ||
      recent.collection !== collection ||
      recent.writes !== this.writeCount(collection) ||
      recent.key !== filterKey(filter)
    ) {
      yield* this.candidates(collection, filter);
      return;
    }
    log('a write of the filter just read: %d documents of %s', recent.offsets.length, file);
    yield* this.fileStatesAt(collection, file, recent.offsets.toArray());
    yield this.insertedStates(collection);
  }

  /** Offsets of a file's documents by _id (ObjectId and string ids), built on first use: a server's _id index. */
  private async idIndex(file: string): Promise<Map<string, number>> {
    const built = this.idIndexes.get(file);
    if (built) return built;
    log('indexing the _ids of %s', file);
    const index = new Map<string, number>();
    for await (const raws of readBsonBatches(file)) {
      for (const raw of raws) {
        const key = rawIdKey(raw.bytes);
        if (key !== undefined) index.set(key, raw.offset);
      }
      if (this.pacer.due) await this.pacer.turn();
    }
    this.idIndexes.set(file, index);
    return index;
  }

  /**
   * With `fields` (what an inclusion projection keeps), the matching documents come projected, decoded only as far
   * as those fields where the bytes allow.
   */
  async *matchedBatches(
    collection: string,
    filter: Document,
    fields?: Set<string>,
  ): AsyncIterable<Document[]> {
    const compiled = filterOf(filter);
    const fresh = (): Document[] => (fields ? Object.assign([], { [PROJECTED]: true }) : []);
    const writes = this.writeCount(collection);
    let recording = this.recorder(collection, filter);
    let batch = fresh();
    for await (const states of this.candidates(collection, filter)) {
      for (const state of states) {
        if (!matches(state, compiled)) continue;
        batch.push(fields ? projected(state, fields) : documentOf(state));
        if (recording && !state.inserted) {
          recording.push(state.offset);
          if (recording.length > RECORDED_OFFSETS) recording = undefined;
        }
      }
      if (batch.length >= BATCH) {
        yield batch;
        batch = fresh();
      }
    }
    this.recorded(collection, filter, recording, writes);
    if (batch.length > 0) yield batch;
  }

  /**
   * A find sorted by one field and projected to it and _id (journaling a step: the ids re-pointed, by the value
   * they held): the matches are kept as the bytes of their _ids, grouped by the bytes of the field (13 bytes a
   * document for ObjectId ids, not two objects), the groups put in mingo's order of their values, and each group
   * in natural order (a sort keeps it among equal values). Undefined when a match's field or _id is not an
   * ObjectId or a string (values of other types compare across types): the caller sorts the documents.
   */
  async sortedByValue(
    collection: string,
    filter: Document,
    field: string,
    sort: Record<string, 1 | -1>,
  ): Promise<AsyncIterable<Document[]> | undefined> {
    const compiled = filterOf(filter);
    const name = Buffer.from(field, 'utf8');
    const writes = this.writeCount(collection);
    let recording = this.recorder(collection, filter);
    const groups = new Map<string, { value: Document; ids: ByteList }>();
    for await (const states of this.candidates(collection, filter)) {
      for (const state of states) {
        if (!matches(state, compiled)) continue;
        const bytes = state.bytes ?? Buffer.from(BSON.serialize(state.document as Document));
        const value = rawElement(bytes, name);
        const id = rawElement(bytes, ID_NAME);
        if (!value || !id || !SORTED_TYPES.has(value.type) || !SORTED_TYPES.has(id.type)) return undefined;
        const key = `${value.type}:${bytes.toString('latin1', value.start, value.end)}`;
        let group = groups.get(key);
        if (!group) {
          group = { value: decodeFields(bytes, new Set([field])) as Document, ids: new ByteList() };
          groups.set(key, group);
        }
        group.ids.push(id.type, bytes, id.start, id.end);
        if (recording && !state.inserted) {
          recording.push(state.offset);
          if (recording.length > RECORDED_OFFSETS) recording = undefined;
        }
      }
    }
    this.recorded(collection, filter, recording, writes);
    const byValue = new Map([...groups.values()].map((group) => [group.value, group]));
    const order = find([...byValue.keys()], {})
      .sort(sort)
      .all() as Document[];
    const element = (document: Document) => {
      const bytes = Buffer.from(BSON.serialize(document));
      return bytes.subarray(4, bytes.length - 1);
    };
    const pacer = this.pacer;
    return (async function* () {
      let batch: Document[] = [];
      for (const value of order) {
        const group = byValue.get(value) as { value: Document; ids: ByteList };
        for (const document of group.ids.documents(element(value))) {
          batch.push(document);
          if (batch.length >= BATCH) {
            yield batch;
            batch = [];
            if (pacer.due) await pacer.turn();
          }
        }
      }
      if (batch.length > 0) yield batch;
    })();
  }

  /**
   * An additive $group (GroupSums) reading only `fields`: the matching documents are told apart by the bytes of
   * those fields, and the group is computed once per distinct set of values, then multiplied by how many documents
   * hold it (the scan's counts per value: a handful of distinct values over millions of documents).
   */
  async group(
    collection: string,
    filter: Document,
    fields: Set<string>,
    group: Document,
  ): Promise<Document[]> {
    const compiled = filterOf(filter);
    const names = [...fields].map((field) => Buffer.from(field, 'utf8'));
    const alike = new Map<string, { count: number; document: Document }>();
    for await (const states of this.candidates(collection, filter)) {
      for (const state of states) {
        if (!matches(state, compiled)) continue;
        const raw = state.bytes && !state.document ? rawFieldsKey(state.bytes, names) : undefined;
        const document = raw === undefined ? projected(state, fields) : undefined;
        const key = raw === undefined ? `d${BSON.EJSON.stringify(document, { relaxed: false })}` : `r${raw}`;
        const entry = alike.get(key);
        if (entry) entry.count += 1;
        else alike.set(key, { count: 1, document: document ?? projected(state, fields) });
      }
    }
    const sums = new GroupSums();
    for (const { count, document } of alike.values()) {
      for (const partial of aggregate([document], [group])) {
        const times = timesOf(partial, count);
        if (times) sums.add(times);
        // Sums that are not whole numbers are added one by one, as the documents would have been.
        else for (let i = 0; i < count; i += 1) sums.add(i === 0 ? partial : { ...partial });
      }
      if (this.pacer.due) await this.pacer.turn();
    }
    return sums.groups();
  }

  async count(collection: string, filter: Document): Promise<number> {
    const compiled = filterOf(filter);
    const writes = this.writeCount(collection);
    let recording = this.recorder(collection, filter);
    let total = 0;
    for await (const states of this.candidates(collection, filter)) {
      for (const state of states) {
        if (!matches(state, compiled)) continue;
        total += 1;
        if (recording && !state.inserted) {
          recording.push(state.offset);
          if (recording.length > RECORDED_OFFSETS) recording = undefined;
        }
      }
    }
    this.recorded(collection, filter, recording, writes);
    return total;
  }

  /** Adds a write; what it matched and changed is counted on one pass, before it. */
  async write(
    collection: string,
    filter: Document,
    update: Omit<Extract<Write, { filter: Filter }>, 'filter'>,
  ): Promise<UpdateResult> {
    const offsets = new Offsets();
    const write = { filter: filterOf(filter), ...update };
    let matched = 0;
    let modified = 0;
    for await (const states of this.writeCandidates(collection, filter)) {
      for (const state of states) {
        if (!matches(state, write.filter)) continue;
        matched += 1;
        if (!state.inserted) offsets.push(state.offset);
        if (change(state, write)) modified += 1;
      }
    }
    this.pending(collection).push({ ...write, matched: offsets });
    this.recent = undefined;
    return { matched, modified };
  }

  /** The first of these _ids the collection holds as this transaction sees it (idKey), or undefined. */
  async existingId(collection: string, ids: unknown[]): Promise<string | undefined> {
    const inserted = this.insertedIds.get(collection);
    const found = ids.map(idKey).find((key) => inserted?.has(key));
    if (found !== undefined) return found;
    const filter = { _id: { $in: ids } };
    const compiled = filterOf(filter);
    for await (const states of this.fileCandidates(collection, filter)) {
      for (const state of states) if (matches(state, compiled)) return idKey(documentOf(state)._id);
    }
    return undefined;
  }

  insert(collection: string, documents: Document[]): void {
    let ids = this.insertedIds.get(collection);
    if (!ids) {
      ids = new Set();
      this.insertedIds.set(collection, ids);
    }
    for (const document of documents) ids.add(idKey(document._id));
    this.pending(collection).push({
      inserted: documents.map((document) => Buffer.from(BSON.serialize(document))),
    });
  }

  /** The collection's new file: documents no write touched keep their bytes, changed ones in place where they could. */
  async *rewritten(collection: string): AsyncIterable<Uint8Array> {
    for await (const states of this.states(collection)) {
      // A read chunk's documents in one piece: the writer's loop is not a promise per document.
      if (states.length > 0) {
        yield Buffer.concat(states.map((state) => state.bytes ?? BSON.serialize(state.document as Document)));
      }
    }
  }

  private pending(collection: string): Write[] {
    let writes = this.writes.get(collection);
    if (!writes) {
      writes = [];
      this.writes.set(collection, writes);
    }
    return writes;
  }
}

/** The held collections, read whole: their documents, unique by _id as on a server. */
async function loadHeld(layout: DumpLayout, signal: AbortSignal | undefined): Promise<Collections> {
  const collections: Collections = new Map();
  const pacer = new Pacer(signal, WHAT);
  for (const name of HELD) {
    const file = layout.files.get(name);
    if (!file) continue;
    const documents: Document[] = [];
    for await (const raw of readBsonFile(file)) {
      documents.push(decodeDocument(raw, file));
      if (pacer.due) await pacer.turn();
    }
    collections.set(name, documents);
  }
  await assertUniqueIds(collections, layout.dir, signal);
  return collections;
}

function readIndexes(file: string, text: string): IndexInfo[] {
  try {
    const metadata = BSON.EJSON.parse(text, { relaxed: true }) as { indexes?: IndexInfo[] };
    return (metadata.indexes ?? []).map(
      ({ name, key, unique, sparse, partialFilterExpression, collation }) => ({
        name,
        key,
        ...(unique === undefined ? {} : { unique }),
        ...(sparse === undefined ? {} : { sparse }),
        ...(partialFilterExpression === undefined ? {} : { partialFilterExpression }),
        ...(collation === undefined ? {} : { collation }),
      }),
    );
  } catch (error) {
    throw new UsageError(
      `Dump metadata ${file} is not valid Extended JSON (${(error as Error).message}); take the dump again`,
      { cause: error },
    );
  }
}

export interface DumpOptions {
  /** Collections the run reads; a dump without one of them is refused. */
  requiredCollections?: readonly string[];
  signal?: AbortSignal;
  /** Where long passes over large files say how far they are (given only on a terminal, never with --json). */
  progress?: (line: string) => void;
}

function checkRequired(layout: DumpLayout, required: readonly string[]): void {
  const missing = required.filter((name) => !layout.files.has(name));
  if (missing.length === 0) return;
  const names = missing.map((name) => `"${name}"`).join(', ');
  throw new UsageError(
    `Dump ${layout.dir} has no ${names} collection${missing.length === 1 ? '' : 's'} (${missing.map((name) => `${name}.bson`).join(', ')}); it is not a complete dump of the database: take it again (mongodump dumps an empty collection as an empty file)`,
  );
}

async function open(dir: string, options: DumpOptions): Promise<{ layout: DumpLayout; held: Collections }> {
  const layout = await committedView(await findDump(dir));
  checkRequired(layout, options.requiredCollections ?? []);
  return { layout, held: await loadHeld(layout, options.signal) };
}

export class DumpReadOnlyStore extends SnapshotReads implements ReadOnlyStore {
  readonly description: string;
  protected streams: Streams;

  protected readonly counted: Counted = new Map();

  protected constructor(
    protected layout: DumpLayout,
    held: Collections,
    protected readonly progress?: (line: string) => void,
  ) {
    super(held, undefined, WHAT);
    this.description = describeDump(layout.dir);
    this.streams = new Streams(layout, this.pacer, new Map(), progress, this.counted);
  }

  static async open(dir: string, options: DumpOptions = {}): Promise<DumpReadOnlyStore> {
    const { layout, held } = await open(dir, options);
    return new DumpReadOnlyStore(layout, held, options.progress);
  }

  protected override matchedBatches(
    collection: string,
    filter: Document,
    fields?: Set<string>,
  ): AsyncIterable<Document[]> {
    return this.streams.streams(collection)
      ? this.streams.matchedBatches(collection, filter, fields)
      : super.matchedBatches(collection, filter);
  }

  override count(collection: string, filter: Document): Promise<number> {
    return this.streams.streams(collection)
      ? this.streams.count(collection, filter)
      : super.count(collection, filter);
  }

  protected override decodesEachRead(collection: string): boolean {
    return this.streams.streams(collection);
  }

  protected override sortedCompactly(
    collection: string,
    filter: Document,
    fields: Set<string> | undefined,
    sort: Record<string, 1 | -1>,
  ): Promise<AsyncIterable<Document[]> | undefined> {
    const [field, ...more] = Object.keys(sort);
    const compact =
      field !== undefined &&
      more.length === 0 &&
      field !== '_id' &&
      fields?.size === 2 &&
      fields.has('_id') &&
      fields.has(field) &&
      this.streams.streams(collection);
    return compact
      ? this.streams.sortedByValue(collection, filter, field, sort)
      : super.sortedCompactly(collection, filter, fields, sort);
  }

  protected override additiveGroup(
    collection: string,
    filter: Document,
    fields: Set<string> | undefined,
    group: Document,
  ): Promise<Document[]> {
    return fields && this.streams.streams(collection)
      ? this.streams.group(collection, filter, fields, group)
      : super.additiveGroup(collection, filter, fields, group);
  }

  override async listCollections(): Promise<string[]> {
    return [...this.layout.files.keys()];
  }

  /**
   * The indexes the dump's metadata files list (the server's, when the dump was taken), so the unique-index and
   * index checks run on a dump. No shards, cache or limits: a folder has none.
   */
  override async inspect(collections: string[] = [...this.layout.files.keys()]): Promise<ServerFacts> {
    const indexes: Record<string, IndexInfo[]> = {};
    const unknown: string[] = [];
    for (const collection of collections) {
      const file = this.layout.files.get(collection);
      if (!file) continue;
      const metadata = metadataFileOf(file);
      const bytes = await readFile(metadata).catch(() => undefined);
      if (bytes === undefined) {
        unknown.push(`the indexes of ${collection} (the dump has no ${basename(metadata)})`);
        continue;
      }
      indexes[collection] = readIndexes(
        metadata,
        (isGzip(metadata) ? gunzipSync(bytes) : bytes).toString('utf8'),
      );
    }
    return { indexes, shardKeys: {}, unknown };
  }

  async close(): Promise<void> {}
}

class DumpTransaction extends SnapshotWorkingCopy {
  constructor(
    held: Collections,
    private readonly streams: Streams,
    /** Held collections this transaction changed: rewritten at commit. */
    readonly changedHeld: Set<string>,
    signal: AbortSignal | undefined,
  ) {
    super(held, signal, WHAT);
  }

  protected override matchedBatches(
    collection: string,
    filter: Document,
    fields?: Set<string>,
  ): AsyncIterable<Document[]> {
    return this.streams.streams(collection)
      ? this.streams.matchedBatches(collection, filter, fields)
      : super.matchedBatches(collection, filter);
  }

  override count(collection: string, filter: Document): Promise<number> {
    return this.streams.streams(collection)
      ? this.streams.count(collection, filter)
      : super.count(collection, filter);
  }

  protected override decodesEachRead(collection: string): boolean {
    return this.streams.streams(collection);
  }

  protected override sortedCompactly(
    collection: string,
    filter: Document,
    fields: Set<string> | undefined,
    sort: Record<string, 1 | -1>,
  ): Promise<AsyncIterable<Document[]> | undefined> {
    const [field, ...more] = Object.keys(sort);
    const compact =
      field !== undefined &&
      more.length === 0 &&
      field !== '_id' &&
      fields?.size === 2 &&
      fields.has('_id') &&
      fields.has(field) &&
      this.streams.streams(collection);
    return compact
      ? this.streams.sortedByValue(collection, filter, field, sort)
      : super.sortedCompactly(collection, filter, fields, sort);
  }

  protected override additiveGroup(
    collection: string,
    filter: Document,
    fields: Set<string> | undefined,
    group: Document,
  ): Promise<Document[]> {
    return fields && this.streams.streams(collection)
      ? this.streams.group(collection, filter, fields, group)
      : super.additiveGroup(collection, filter, fields, group);
  }

  override async updateMany(collection: string, filter: Document, update: Update): Promise<UpdateResult> {
    if (!this.streams.streams(collection)) {
      this.changedHeld.add(collection);
      return super.updateMany(collection, filter, update);
    }
    const raw = rawUpdate(update);
    return this.streams.write(collection, filter, {
      change: (document) => updated(document, update),
      ...(raw ? { raw } : {}),
    });
  }

  override async replaceOne(
    collection: string,
    filter: Document,
    replacement: Document,
  ): Promise<UpdateResult> {
    if (!this.streams.streams(collection)) {
      this.changedHeld.add(collection);
      return super.replaceOne(collection, filter, replacement);
    }
    // The first match only, as a server does: found first, then replaced by its _id.
    let first: Document | undefined;
    for await (const [document] of this.streams.matchedBatches(collection, filter)) {
      first = document;
      break;
    }
    if (!first) return { matched: 0, modified: 0 };
    const id = first._id;
    return this.streams.write(
      collection,
      { _id: id },
      {
        change: (document) => {
          const replaced = { ...copyOf(replacement), _id: id };
          const modified = Buffer.compare(BSON.serialize(replaced), BSON.serialize(document)) !== 0;
          return { document: replaced, modified };
        },
      },
    );
  }

  /** Like a server: a duplicate _id is refused (E11000), checked against the collection as this transaction sees it. */
  override async insertMany(collection: string, documents: Document[]): Promise<void> {
    if (!this.streams.streams(collection)) {
      this.changedHeld.add(collection);
      return super.insertMany(collection, documents);
    }
    const wanted = new Set(documents.map((document) => idKey(document._id)));
    const duplicate = (key: string) =>
      new RuntimeError(`E11000 duplicate key error collection: ${collection} dup key: { _id: ${key} }`);
    if (wanted.size !== documents.length || documents.some((document) => document._id === undefined)) {
      throw duplicate(
        documents.map((document) => idKey(document._id)).find((key, i, all) => all.indexOf(key) !== i) ??
          'undefined',
      );
    }
    const existing = await this.streams.existingId(
      collection,
      documents.map((document) => document._id),
    );
    if (existing !== undefined) throw duplicate(existing);
    this.streams.insert(collection, documents);
  }
}

/** Bytes in chunks of about a megabyte, gzip-compressed for a `--gzip` dump. */
function encoded(gzip: boolean, documents: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  async function* chunks(): AsyncGenerator<Buffer> {
    let pieces: Uint8Array[] = [];
    let length = 0;
    for await (const bytes of documents) {
      pieces.push(bytes);
      length += bytes.length;
      if (length >= WRITE_CHUNK) {
        yield Buffer.concat(pieces);
        pieces = [];
        length = 0;
      }
    }
    if (pieces.length > 0) yield Buffer.concat(pieces);
  }
  if (!gzip) return chunks();
  const source = Readable.from(chunks());
  const zipped = createGzip();
  // pipe() does not pass on a failure of the source (an interruption, a damaged file): the output fails with it.
  source.on('error', (error) => zipped.destroy(error));
  return source.pipe(zipped);
}

/** What a new collection's metadata file says: the _id index, as mongodump writes it. */
function newMetadata(collection: string): string {
  return BSON.EJSON.stringify(
    { indexes: [{ v: 2, key: { _id: 1 }, name: '_id_' }], collectionName: collection, type: 'collection' },
    { relaxed: false },
  );
}

export interface DumpCheck {
  /** The database folder (the one given, or the one inside it). */
  dir: string;
  /** Why an execution could not change this dump, or undefined. */
  problem?: string;
}

/**
 * Whether an execution can change this dump: every collection file, the commit record and the new files must be
 * writable in place (new files are written beside the old and renamed over them). Writes nothing.
 */
export async function dumpReplaceProblem(dir: string): Promise<DumpCheck> {
  const layout = await findDump(dir);
  const files = [join(layout.dir, COMMIT_RECORD), ...layout.files.values()];
  for (const file of files) {
    const problem = (await replaceProblem(file)) ?? (await notWritable(file));
    if (problem) {
      return {
        dir: layout.dir,
        problem: `Dump ${layout.dir} cannot be changed: ${problem}; make it writable, or execute on a copy (--preview only reads it)`,
      };
    }
  }
  return { dir: layout.dir };
}

async function notWritable(file: string): Promise<string | undefined> {
  if (!(await exists(file))) return undefined;
  return access(file, constants.W_OK).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => `${file} is not writable (${error.code})`,
  );
}

export class DumpStore extends DumpReadOnlyStore implements Store {
  private constructor(
    layout: DumpLayout,
    held: Collections,
    private readonly lock: FileLock,
    progress: ((line: string) => void) | undefined,
  ) {
    super(layout, held, progress);
  }

  /**
   * Holds `<folder>.lock` from the first read until close: a second run on the same dump is refused. Finishes
   * (or discards) what an interrupted commit left, before reading anything.
   */
  static override async open(dir: string, options: DumpOptions = {}): Promise<DumpStore> {
    const check = await dumpReplaceProblem(dir);
    if (check.problem) throw new UsageError(check.problem);
    const lock = await acquireLock(lockFileOf(check.dir));
    try {
      await recover(check.dir);
      const { layout, held } = await open(check.dir, options);
      return new DumpStore(layout, held, lock, options.progress);
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  override async close(): Promise<void> {
    await this.lock.release();
  }

  async assertTransactional(): Promise<void> {}

  /** An insert into a missing collection creates its file at commit: nothing to prepare. */
  async ensureCollections(): Promise<void> {}

  /** A commit here is local (the commit record, then renames), so its outcome is in the files: read them. */
  async settle(collection: string, id: string): Promise<Settled> {
    const reads = await DumpReadOnlyStore.open(this.layout.dir);
    for await (const _ of reads.find(collection, { _id: id }, { limit: 1 })) return 'committed';
    return 'not-committed';
  }

  /**
   * The transaction records its writes and answers reads by streaming the files with them applied; nothing
   * touches the dump until the commit: each changed collection is written whole beside its file, then a commit
   * record names the renames, then the renames happen. Stopped before the record, the dump is as it was; after
   * it, the next run on the dump finishes the renames.
   */
  async transaction<T>(
    work: (tx: TransactionStore) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    const { signal } = options;
    const held = await loadHeld(this.layout, signal);
    const writes: Writes = new Map();
    const pacer = new Pacer(signal, WHAT);
    const streams = new Streams(this.layout, pacer, writes, this.progress, this.counted);
    const tx = new DumpTransaction(held, streams, new Set(), signal);
    const result = await work(tx);
    if (signal?.aborted) throw interrupted(signal, WHAT);
    const replacements: Replacement[] = [];
    try {
      for (const collection of [...tx.changedHeld, ...writes.keys()]) {
        const existing = this.layout.files.get(collection);
        const file = existing ?? join(this.layout.dir, `${collection}.bson${this.layout.gzip ? '.gz' : ''}`);
        const bytes = tx.changedHeld.has(collection)
          ? heldBytes(held.get(collection) ?? [], pacer)
          : streams.rewritten(collection);
        log('writing the new %s beside %s', collection, file);
        replacements.push(await prepareReplacement(file, encoded(this.layout.gzip, bytes)));
        if (!existing) {
          const metadata = metadataFileOf(file);
          replacements.push(
            await prepareReplacement(metadata, encoded(this.layout.gzip, once(newMetadata(collection)))),
          );
        }
      }
      if (signal?.aborted) throw interrupted(signal, WHAT);
      options.onCommit?.();
      const record: CommitRecord = {
        renames: replacements.map(({ temp, target }) => ({ temp, target })),
      };
      await replaceFile(join(this.layout.dir, COMMIT_RECORD), JSON.stringify(record));
      log('commit record written: %d renames', record.renames.length);
    } catch (error) {
      for (const replacement of replacements) await replacement.discard();
      throw error;
    }
    // Committed: from here an exit leaves the record, and the next run finishes the renames.
    for (const replacement of replacements) replacement.keep();
    for (const replacement of replacements) await replacement.commit();
    await unlink(join(this.layout.dir, COMMIT_RECORD));
    this.layout = await findDump(this.layout.dir);
    this.streams = new Streams(this.layout, this.pacer, new Map(), this.progress, this.counted);
    this.collections = held;
    this.idIndexes = new Map();
    log('committed %s', this.layout.dir);
    return result;
  }
}

async function* once(text: string): AsyncIterable<Uint8Array> {
  yield Buffer.from(text, 'utf8');
}

async function* heldBytes(documents: Document[], pacer: Pacer): AsyncIterable<Uint8Array> {
  for (const document of documents) {
    yield BSON.serialize(document);
    if (pacer.due) await pacer.turn();
  }
}
