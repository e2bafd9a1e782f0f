import { randomBytes } from 'node:crypto';
import { BSON, type Document, Long } from 'mongodb';
import { Code, CommandError } from './errors.js';

const DEFAULT_FIRST_BATCH = 101;
/** A server fills a batch up to 16 MiB (the maximum document size). */
const MAX_BATCH_BYTES = 16 * 1024 * 1024;

interface OpenCursor {
  ns: string;
  documents: Document[];
  position: number;
}

export interface Batch {
  documents: Document[];
  /** 0 when the cursor is exhausted (and closed). */
  id: Long;
}

/**
 * Server cursors over results computed when the cursor opened (the peer materialises a result, a server
 * streams it; either way a getMore sees the snapshot the find read). Ids are random positive 64-bit
 * integers sent as BSON Long, as a server's are.
 */
export class Cursors {
  private readonly open = new Map<string, OpenCursor>();

  /** The first batch; the rest stays on the server under the returned id. */
  first(ns: string, documents: Document[], options: { batchSize?: number; singleBatch?: boolean }): Batch {
    const cursor = { ns, documents, position: 0 };
    const batch = take(cursor, options.batchSize ?? DEFAULT_FIRST_BATCH);
    if (cursor.position >= documents.length || options.singleBatch)
      return { documents: batch, id: Long.ZERO };
    const id = newCursorId();
    this.open.set(id.toString(), cursor);
    return { documents: batch, id };
  }

  next(id: unknown, ns: string, batchSize: number | undefined): Batch {
    const key = cursorKey(id);
    const cursor = this.open.get(key);
    if (!cursor) throw new CommandError(Code.CursorNotFound, `cursor id ${key} not found`);
    if (cursor.ns !== ns) {
      throw new CommandError(
        13,
        `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`,
      );
    }
    const documents = take(cursor, batchSize ?? Number.POSITIVE_INFINITY);
    if (cursor.position < cursor.documents.length) return { documents, id: Long.fromString(key) };
    this.open.delete(key);
    return { documents, id: Long.ZERO };
  }

  /** killCursors: which ids were open. */
  kill(ids: unknown[]): { killed: Long[]; notFound: Long[] } {
    const killed: Long[] = [];
    const notFound: Long[] = [];
    for (const id of ids) {
      const key = cursorKey(id);
      (this.open.delete(key) ? killed : notFound).push(Long.fromString(key));
    }
    return { killed, notFound };
  }

  /** Closes cursors by the ids first() gave out (as strings): a transaction's, when it ends. */
  close(ids: Iterable<string>): void {
    for (const id of ids) this.open.delete(id);
  }

  killAll(): void {
    this.open.clear();
  }
}

function take(cursor: OpenCursor, count: number): Document[] {
  const batch: Document[] = [];
  let bytes = 0;
  while (batch.length < count && cursor.position < cursor.documents.length) {
    const document = cursor.documents[cursor.position] as Document;
    bytes += BSON.calculateObjectSize(document);
    if (bytes > MAX_BATCH_BYTES && batch.length > 0) break;
    batch.push(document);
    cursor.position += 1;
  }
  return batch;
}

function newCursorId(): Long {
  // 63 random bits, never 0: ids above 2^53 prove the client keeps them as 64-bit integers.
  const bits = randomBytes(8).readBigUInt64LE() & 0x7fff_ffff_ffff_ffffn;
  return Long.fromBigInt(bits === 0n ? 1n : bits);
}

/** A cursor id as the client sent it: a Long, or a number when it was small enough to be promoted. */
function cursorKey(id: unknown): string {
  if (Long.isLong(id)) return id.toString();
  if (typeof id === 'number' || typeof id === 'bigint') return String(id);
  throw new CommandError(Code.BadValue, 'cursor id must be a 64-bit integer');
}
