import { updateMany } from 'mingo';
import type { CollationSpec } from 'mingo/types';
import { cloneDeep, isEqual, setValue } from 'mingo/util';
import { type Document, ObjectId } from 'mongodb';
import { DocumentWriter } from '../document-writer.js';
import { restoreTypes, type StoredDocument, stored, valueKey } from '../documents.js';
import { Code, CommandError, errorReply } from '../errors.js';
import { Blocked, ChangedSinceSnapshot, type Collection } from '../storage.js';
import { type CommandRun, collectionName, type Handler } from './context.js';
import { matching } from './reads.js';

interface Outcome {
  /** The reply's counters (n, nModified, upserted). */
  counts: Document;
  /** Statement failures, in order; an ordered command stops at the first. */
  writeErrors: { index: number; error: unknown }[];
}

/** The collection written to; it is created by the first write that needs it (insert, upsert), not before. */
interface Target {
  readonly db: string;
  readonly name: string;
  readonly collection: Collection;
}

type Statements = (writer: DocumentWriter, target: Target) => Outcome;

const WRITE_CONFLICT = new CommandError(
  Code.WriteConflict,
  'WriteConflict error: this operation conflicted with another operation. Please retry your operation or multi-document transaction.',
);

/**
 * Runs a write command's statements. Inside a transaction they go to its writer: a document another open
 * transaction holds, or one changed since the transaction's snapshot, fails the command with WriteConflict
 * at that write (first writer wins), and a statement error fails the whole command (the dispatcher then
 * aborts the transaction), as mongod does. Outside one, the command is one writer committed at once; when
 * it meets a document an open transaction holds it waits for that transaction to end and runs again, the
 * way a server's plain write waits on the transaction's lock.
 */
async function runStatements(run: CommandRun, statements: Statements): Promise<Document> {
  const { storage } = run.peer;
  const target: Target = {
    db: run.db,
    name: collectionName(run),
    get collection() {
      return storage.ensureCollection(this.db, this.name).collection;
    },
  };
  const transaction = run.session.transaction;
  if (transaction) {
    let outcome: Outcome;
    try {
      outcome = statements(transaction.writer, target);
    } catch (error) {
      if (error instanceof Blocked || error instanceof ChangedSinceSnapshot) throw WRITE_CONFLICT;
      throw error;
    }
    const first = outcome.writeErrors[0];
    if (first) throw first.error;
    return { ...outcome.counts, ok: 1 };
  }
  for (;;) {
    const writer = new DocumentWriter(storage, storage.now);
    try {
      const outcome = statements(writer, target);
      writer.commit();
      return { ...outcome.counts, ...writeErrorsField(outcome), ok: 1 };
    } catch (error) {
      writer.abort();
      if (!(error instanceof Blocked)) throw error;
      await error.holder.ended;
    }
  }
}

function writeErrorsField(outcome: Outcome): Document {
  if (outcome.writeErrors.length === 0) return {};
  return {
    writeErrors: outcome.writeErrors.map(({ index, error }) => {
      const { ok: _ok, ...entry } = errorReply(error);
      return { index, ...entry };
    }),
  };
}

/** Runs each statement; storage-level signals (Blocked, ChangedSinceSnapshot) escape, others are recorded. */
function eachStatement<T>(
  items: T[],
  ordered: boolean,
  run: (item: T, index: number) => void,
): Outcome['writeErrors'] {
  const errors: Outcome['writeErrors'] = [];
  for (const [index, item] of items.entries()) {
    try {
      run(item, index);
    } catch (error) {
      if (error instanceof Blocked || error instanceof ChangedSinceSnapshot) throw error;
      errors.push({ index, error });
      if (ordered) break;
    }
  }
  return errors;
}

const insert: Handler = (run) => {
  const plain = (run.command.documents ?? []) as Document[];
  const typed = (run.typed().documents ?? []) as Document[];
  return runStatements(run, (writer, target) => {
    let n = 0;
    const writeErrors = eachStatement(plain, run.command.ordered !== false, (document, index) => {
      writer.insert(target.collection, withId(typed[index] as Document, document));
      n += 1;
    });
    return { counts: { n }, writeErrors };
  });
};

/** The server gives a document without `_id` one, as its first field. */
function withId(typed: Document, plain: Document): StoredDocument {
  if (plain._id !== undefined) return stored(typed, plain);
  const _id = new ObjectId();
  return stored({ _id, ...typed }, { _id, ...plain });
}

interface UpdateStatement {
  q: Document;
  u: Document | Document[];
  multi?: boolean;
  upsert?: boolean;
  arrayFilters?: Document[];
  collation?: CollationSpec;
}

const update: Handler = (run) => {
  const statements = (run.command.updates ?? []) as UpdateStatement[];
  const typedStatements = (run.typed().updates ?? []) as { u: Document }[];
  return runStatements(run, (writer, target) => {
    const counts = { n: 0, nModified: 0 };
    const upserted: Document[] = [];
    const writeErrors = eachStatement(statements, run.command.ordered !== false, (statement, index) => {
      const typedU = typedStatements[index]?.u as Document;
      const result = updateStatement(writer, target, statement, typedU);
      counts.n += result.matched;
      counts.nModified += result.modified;
      if (result.upsertedId !== undefined) {
        counts.n += 1;
        upserted.push({ index, _id: result.upsertedId });
      }
    });
    return { counts: { ...counts, ...(upserted.length > 0 ? { upserted } : {}) }, writeErrors };
  });
};

/** Neither a pipeline nor operators: the new document itself. */
function replacementOf(u: Document | Document[]): Document | undefined {
  return Array.isArray(u) || Object.keys(u).some((key) => key.startsWith('$')) ? undefined : u;
}

/** $setOnInsert applies to an upserted document only; mingo does not know it, so it is taken out here. */
function withoutSetOnInsert(u: Document | Document[]): Document | Document[] {
  if (Array.isArray(u) || !('$setOnInsert' in u)) return u;
  const { $setOnInsert: _insertOnly, ...rest } = u;
  return rest;
}

function updateStatement(
  writer: DocumentWriter,
  target: Target,
  statement: UpdateStatement,
  typedU: Document,
): { matched: number; modified: number; upsertedId?: unknown } {
  const { q, u, multi, collation, arrayFilters } = statement;
  const matched: StoredDocument[] = [];
  for (const doc of matching(writer.view, target.db, target.name, q, collation)) {
    matched.push(doc);
    if (!multi) break;
  }
  if (matched.length === 0) {
    if (!statement.upsert) return { matched: 0, modified: 0 };
    return { matched: 0, modified: 0, upsertedId: upsert(writer, target, statement, typedU) };
  }
  const replacement = replacementOf(u);
  const next = replacement
    ? matched.map((before) => replaced(before, replacement, typedU))
    : applyUpdate(matched, q, withoutSetOnInsert(u), { arrayFilters, collation });
  let modified = 0;
  for (const [i, before] of matched.entries()) {
    const after = next[i] as StoredDocument;
    // Unchanged: the update handed back the stored typed document (see restoreTypes and replaced).
    if (after.typed === before.typed) continue;
    if (valueKey(after.plain._id) !== valueKey(before.plain._id)) {
      throw new CommandError(
        Code.ImmutableField,
        "Performing an update on the path '_id' would modify the immutable field '_id'",
      );
    }
    writer.replace(target.collection, before, after);
    modified += 1;
  }
  return { matched: matched.length, modified };
}

/** Operator and pipeline updates, run by mingo on copies of the matched documents' plain shape. */
function applyUpdate(
  matched: StoredDocument[],
  q: Document,
  u: Document | Document[],
  config: { arrayFilters?: Document[]; collation?: CollationSpec },
): StoredDocument[] {
  const copies = matched.map((doc) => cloneDeep(doc.plain) as Document);
  try {
    // The filter again (not {}): the positional `$` operator needs to know which array element matched.
    updateMany(copies, q, u as Document, config);
  } catch (error) {
    // mingo refuses an operator on _id with the server's own message (even one setting the same value).
    const message = (error as Error).message;
    if (message.includes("immutable field '_id'")) throw new CommandError(Code.ImmutableField, message);
    throw error;
  }
  return copies.map((plain, i) => {
    const before = matched[i] as StoredDocument;
    return stored(restoreTypes(plain, before) as Document, plain);
  });
}

/** A replacement keeps the document's `_id`, first, as the server does; an identical one is no change. */
function replaced(before: StoredDocument, plainU: Document, typedU: Document): StoredDocument {
  const plain = { _id: before.plain._id, ...plainU };
  return isEqual(plain, before.plain) ? before : stored({ _id: before.typed._id, ...typedU }, plain);
}

/** The document an upsert inserts: the filter's equality fields, then the update (or the replacement). */
function upsert(
  writer: DocumentWriter,
  target: Target,
  statement: UpdateStatement,
  typedU: Document,
): unknown {
  const { q, u } = statement;
  const replacement = replacementOf(u);
  let doc: StoredDocument;
  if (replacement) {
    const _id = replacement._id ?? q._id ?? new ObjectId();
    doc = stored({ _id, ...typedU }, { _id, ...replacement });
  } else {
    const seed: Document = {};
    for (const [path, value] of equalityFields(q)) setValue(seed, path, value);
    const onInsert =
      Array.isArray(u) || !u.$setOnInsert ? u : { ...u, $set: { ...u.$set, ...u.$setOnInsert } };
    updateMany([seed], {}, withoutSetOnInsert(onInsert) as Document);
    const _id = seed._id ?? new ObjectId();
    doc = stored({ _id, ...seed });
  }
  writer.insert(target.collection, doc);
  return doc.plain._id;
}

function equalityFields(q: Document): [string, unknown][] {
  const fields: [string, unknown][] = [];
  for (const [key, value] of Object.entries(q)) {
    if (key === '$and' && Array.isArray(value)) fields.push(...value.flatMap((part) => equalityFields(part)));
    const isOperator =
      typeof value === 'object' && value !== null && Object.keys(value).some((k) => k.startsWith('$'));
    if (!key.startsWith('$') && !isOperator) fields.push([key, value]);
    if (isOperator && '$eq' in value) fields.push([key, value.$eq]);
  }
  return fields;
}

const del: Handler = (run) => {
  const statements = (run.command.deletes ?? []) as {
    q: Document;
    limit: number;
    collation?: CollationSpec;
  }[];
  return runStatements(run, (writer, target) => {
    let n = 0;
    const writeErrors = eachStatement(
      statements,
      run.command.ordered !== false,
      ({ q, limit, collation }) => {
        const doomed: StoredDocument[] = [];
        for (const doc of matching(writer.view, target.db, target.name, q, collation)) {
          doomed.push(doc);
          if (limit === 1) break;
        }
        for (const doc of doomed) writer.remove(target.collection, doc);
        n += doomed.length;
      },
    );
    return { counts: { n }, writeErrors };
  });
};

export const writeCommands: Record<string, Handler> = { insert, update, delete: del };
