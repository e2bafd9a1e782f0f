import { Aggregator, find as mingoFind, ProcessingMode, Query } from 'mingo';
import type { CollationSpec } from 'mingo/types';
import { resolve } from 'mingo/util';
import type { Document } from 'mongodb';
import { type StoredDocument, valueKey } from '../documents.js';
import { Code, CommandError } from '../errors.js';
import type { ReadView } from '../storage.js';
import { type CommandRun, collectionName, type Handler, namespace, readView } from './context.js';
import { collStats } from './statistics.js';

/** Stages that never change the documents they get, so mingo may read the stored ones without copying. */
const READ_ONLY_STAGES = new Set(['$match', '$group', '$sort', '$skip', '$limit', '$count']);
const WRITING_STAGES = new Set(['$out', '$merge']);

export function* matching(
  view: ReadView,
  db: string,
  collection: string,
  filter: Document | undefined,
  collation?: CollationSpec,
): Generator<StoredDocument> {
  const query = filter && Object.keys(filter).length > 0 ? new Query(filter, { collation }) : undefined;
  for (const doc of view.documents(db, collection)) {
    if (!query || query.test(doc.plain)) yield doc;
  }
}

/** Sorted by mingo on the plain shape; the stored documents come back in that order. */
function sorted(docs: StoredDocument[], sort: Document, collation?: CollationSpec): StoredDocument[] {
  const byPlain = new Map(docs.map((doc) => [doc.plain, doc]));
  return mingoFind(
    docs.map((doc) => doc.plain),
    {},
    undefined,
    { collation },
  )
    .sort(sort)
    .all()
    .map((plain) => byPlain.get(plain) as StoredDocument);
}

/** mingo projects on the typed shape (types survive) but moves `_id` last; a server keeps field order. */
function projected(docs: Document[], projection: Document): Document[] {
  return mingoFind(docs, {}, projection)
    .all()
    .map((out, i) => {
      const ordered: Document = {};
      for (const key of Object.keys(docs[i] as Document)) if (key in out) ordered[key] = out[key];
      return Object.assign(ordered, out);
    });
}

/** The reply's cursor document; a cursor opened in a transaction is closed with it. */
function cursorReply(
  run: CommandRun,
  ns: string,
  documents: Document[],
  options: { batchSize?: number; singleBatch?: boolean },
): Document {
  const batch = run.peer.cursors.first(ns, documents, options);
  if (!batch.id.isZero()) run.session.transaction?.cursorIds.add(batch.id.toString());
  return {
    cursor: {
      firstBatch: batch.documents,
      id: batch.id,
      ns,
      ...(run.session.snapshotRead ? { atClusterTime: run.peer.storage.timestamp(run.session.readTs) } : {}),
    },
    ok: 1,
  };
}

const find: Handler = (run) => {
  const collection = collectionName(run);
  const { filter, sort, projection, skip, limit, collation, singleBatch } = run.command;
  let docs = [...matching(readView(run), run.db, collection, filter, collation)];
  if (sort && Object.keys(sort).length > 0) docs = sorted(docs, sort, collation);
  const start = skip ?? 0;
  // A negative limit is the legacy "one batch of that many".
  const count = limit ? Math.abs(limit) : undefined;
  docs = docs.slice(start, count === undefined ? undefined : start + count);
  const typed = docs.map((doc) => doc.typed);
  const out = projection && Object.keys(projection).length > 0 ? projected(typed, projection) : typed;
  return cursorReply(run, namespace(run, collection), out, {
    batchSize: run.command.batchSize,
    singleBatch: singleBatch === true || limit < 0,
  });
};

const aggregate: Handler = (run) => {
  const collection = run.command.aggregate;
  if (typeof collection !== 'string') {
    throw new CommandError(Code.NotImplemented, 'the wire peer runs collection aggregations only');
  }
  let pipeline = (run.command.pipeline ?? []) as Document[];
  const stages = pipeline.map((stage) => Object.keys(stage)[0] as string);
  if (stages.some((stage) => WRITING_STAGES.has(stage)) || run.command.explain) {
    throw new CommandError(Code.NotImplemented, 'the wire peer does not run $out, $merge or explain');
  }
  if (stages.lastIndexOf('$collStats') > 0) {
    throw new CommandError(40602, '$collStats is only valid as the first stage in a pipeline');
  }
  if (stages[0] === '$collStats') {
    const stats = collStats(run, collection, pipeline[0]?.$collStats as Document);
    pipeline = pipeline.slice(1);
    const results = new Aggregator(pipeline).run([stats]) as Document[];
    return cursorReply(run, namespace(run, collection), results, run.command.cursor ?? {});
  }
  const view = readView(run);
  const plainOf = (name: string) => [...view.documents(run.db, name)].map((doc) => doc.plain);
  const aggregator = new Aggregator(collatedGroups(pipeline, run.command.collation), {
    collation: run.command.collation,
    collectionResolver: plainOf,
    processingMode: stages.every((stage) => READ_ONLY_STAGES.has(stage))
      ? ProcessingMode.CLONE_OFF
      : ProcessingMode.CLONE_INPUT,
  });
  const results = aggregator.run(plainOf(collection)) as Document[];
  return cursorReply(run, namespace(run, collection), results, run.command.cursor ?? {});
};

/**
 * A server's $group compares its keys with the operation's collation (the server's own test, collation_group:
 * "the $group stage and all accumulators respect the collation"); mingo's $group does not. For strength 1 and 2
 * the peer folds the case of every string a group key reads, so "SAM" and "sam" are one group (the key shown
 * is the folded one; a server shows the first document's); accents are not folded.
 */
function collatedGroups(pipeline: Document[], collation: Document | undefined): Document[] {
  if (((collation?.strength as number | undefined) ?? 3) > 2) return pipeline;
  return pipeline.map((stage) =>
    stage.$group ? { $group: { ...stage.$group, _id: foldCase(stage.$group._id) } } : stage,
  );
}

function foldCase(expression: unknown): unknown {
  if (typeof expression === 'string') {
    if (!expression.startsWith('$') || expression.startsWith('$$')) return expression;
    return { $cond: [{ $eq: [{ $type: expression }, 'string'] }, { $toLower: expression }, expression] };
  }
  if (Array.isArray(expression)) return expression.map(foldCase);
  if (expression === null || typeof expression !== 'object' || '_bsontype' in expression) return expression;
  return Object.fromEntries(
    Object.entries(expression).map(([key, value]) => [key, key === '$literal' ? value : foldCase(value)]),
  );
}

const getMore: Handler = (run) => {
  const collection = run.command.collection as string;
  const batch = run.peer.cursors.next(run.command.getMore, namespace(run, collection), run.command.batchSize);
  return { cursor: { nextBatch: batch.documents, id: batch.id, ns: namespace(run, collection) }, ok: 1 };
};

const killCursors: Handler = (run) => {
  const { killed, notFound } = run.peer.cursors.kill((run.command.cursors ?? []) as unknown[]);
  return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
};

const count: Handler = (run) => {
  const { query, skip, limit, collation } = run.command;
  let n = 0;
  for (const _ of matching(readView(run), run.db, collectionName(run), query, collation)) n += 1;
  n = Math.max(0, n - (skip ?? 0));
  return { n: limit ? Math.min(n, Math.abs(limit)) : n, ok: 1 };
};

const distinct: Handler = (run) => {
  const { key, query, collation } = run.command;
  const values = new Map<string, unknown>();
  for (const doc of matching(readView(run), run.db, collectionName(run), query, collation)) {
    const value = resolve(doc.typed, key);
    // An array field contributes each of its elements.
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && !values.has(valueKey(item))) values.set(valueKey(item), item);
    }
  }
  return {
    values: [...values.values()],
    ...(run.session.snapshotRead ? { atClusterTime: run.peer.storage.timestamp(run.session.readTs) } : {}),
    ok: 1,
  };
};

export const readCommands: Record<string, Handler> = {
  find,
  aggregate,
  getMore,
  killCursors,
  count,
  distinct,
};
