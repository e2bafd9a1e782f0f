import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BSON, type Document } from 'mongodb';
import { UsageError } from '../shared/errors.js';

/** One document of a BSON file as it is stored: its bytes, and where they start (uncompressed). */
export interface RawDocument {
  bytes: Buffer;
  offset: number;
}

/** A document is at most 16 MiB; a server allows 16 KiB more for its own fields. Anything larger is a bad length. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 + 16 * 1024;
const READ_CHUNK = 1024 * 1024;

export function isGzip(file: string): boolean {
  return file.endsWith('.gz');
}

function corrupt(file: string, offset: number, problem: string): UsageError {
  return new UsageError(
    `Dump file ${file} is damaged at byte ${offset}${isGzip(file) ? ' (uncompressed)' : ''}: ${problem}; take the dump again (mongodump) or restore this file from a good copy`,
  );
}

function unreadable(file: string, error: unknown): UsageError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code?.startsWith('Z_') || /incorrect header|invalid|unexpected end/i.test(String(error))) {
    return new UsageError(
      `Dump file ${file} is not a gzip file that inflates (${(error as Error).message}); take the dump again, or remove the .gz suffix if it is plain BSON`,
      { cause: error },
    );
  }
  return new UsageError(`Cannot read dump file ${file}: ${code ?? String(error)}; check the --dump folder`, {
    cause: error,
  });
}

function source(file: string): Readable {
  const raw = createReadStream(file, { highWaterMark: READ_CHUNK });
  if (!isGzip(file)) return raw;
  const gunzip = createGunzip({ chunkSize: READ_CHUNK });
  raw.on('error', (error) => gunzip.destroy(error));
  return raw.pipe(gunzip);
}

/**
 * The documents of a BSON file (what mongodump writes: documents one after the other, each starting with its
 * length), `.gz` inflated on the way, as a stream: the file is never held whole. Each document's bytes are a
 * view no other document shares (a consumer may change them in place; keeping one keeps its read chunk). A length that cannot be a document's, a document cut short by the end of the
 * file, or a gzip that does not inflate is refused naming the file and the byte where it is wrong.
 */
export async function* readBsonFile(file: string): AsyncGenerator<RawDocument> {
  for await (const batch of readBsonBatches(file)) yield* batch;
}

/** readBsonFile's documents, those of each read chunk at once: a pass's loop over them is not a promise each. */
export async function* readBsonBatches(file: string): AsyncGenerator<RawDocument[]> {
  let pending: Buffer = Buffer.alloc(0);
  let offset = 0;
  const stream = source(file);
  try {
    /** The whole documents from the start of `buffer` into `batch`; where the first one not whole starts. */
    const split = (buffer: Buffer, batch: RawDocument[]): number => {
      let position = 0;
      while (buffer.length - position >= 4) {
        const length = buffer.readInt32LE(position);
        if (length < 5 || length > MAX_DOCUMENT_BYTES) {
          throw corrupt(file, offset, `a document length of ${length} bytes is impossible`);
        }
        if (buffer.length - position < length) break;
        if (buffer[position + length - 1] !== 0) {
          throw corrupt(file, offset, `the ${length}-byte document there does not end with a zero byte`);
        }
        // A view, not a copy: the chunk is never reused, and is freed with the last document kept from it.
        batch.push({ bytes: buffer.subarray(position, position + length), offset });
        position += length;
        offset += length;
      }
      return position;
    };
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const batch: RawDocument[] = [];
      let buffer = chunk;
      if (pending.length > 0) {
        // Only the document cut by the chunk's edge is copied (its two parts joined), not the whole chunk.
        const length = pending.length >= 4 ? pending.readInt32LE(0) : 0;
        const rest = length - pending.length;
        if (length >= 5 && length <= MAX_DOCUMENT_BYTES && rest <= chunk.length) {
          split(Buffer.concat([pending, chunk.subarray(0, rest)]), batch);
          buffer = chunk.subarray(rest);
        } else {
          buffer = Buffer.concat([pending, chunk]);
        }
      }
      pending = buffer.subarray(split(buffer, batch));
      if (batch.length > 0) yield batch;
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw unreadable(file, error);
  } finally {
    stream.destroy();
  }
  if (pending.length > 0) {
    const length = pending.length >= 4 ? pending.readInt32LE(0) : undefined;
    throw corrupt(
      file,
      offset,
      length === undefined
        ? `the file ends ${pending.length} bytes into a document's length`
        : `the file ends ${pending.length} bytes into a document of ${length} bytes (it was cut short)`,
    );
  }
}

/** Offsets this close together are read in one read; the slack covers the last document of a window. */
const WINDOW_BYTES = 1024 * 1024;
const WINDOW_SLACK = 64 * 1024;

/**
 * The documents that start at these offsets (ascending) of a plain (not gzip) BSON file, read where they are:
 * nearby ones in one read of up to a megabyte (and given together), not one system call per document.
 */
export async function* readBsonAt(file: string, offsets: number[]): AsyncGenerator<RawDocument[]> {
  const handle = await open(file, 'r').catch((error) => {
    throw unreadable(file, error);
  });
  const changed = (offset: number) =>
    corrupt(file, offset, 'the file changed since its documents were indexed');
  const readAt = async (offset: number, length: number): Promise<Buffer> => {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  };
  try {
    let first = 0;
    while (first < offsets.length) {
      const start = offsets[first] as number;
      let last = first;
      while (last + 1 < offsets.length && (offsets[last + 1] as number) - start < WINDOW_BYTES) last += 1;
      const window = await readAt(start, (offsets[last] as number) - start + WINDOW_SLACK);
      const batch: RawDocument[] = [];
      for (let k = first; k <= last; k += 1) {
        const offset = offsets[k] as number;
        const at = offset - start;
        const length = at + 4 <= window.length ? window.readInt32LE(at) : 0;
        if (length < 5 || length > MAX_DOCUMENT_BYTES) throw changed(offset);
        const bytes =
          at + length <= window.length ? window.subarray(at, at + length) : await readAt(offset, length);
        if (bytes.length !== length || bytes[length - 1] !== 0) throw changed(offset);
        batch.push({ bytes, offset });
      }
      yield batch;
      first = last + 1;
    }
  } finally {
    await handle.close();
  }
}

/**
 * A document's values as every store gives them to mingo: numbers as the driver's Int32/Double/Long objects
 * (as the snapshot's Extended JSON and the driver's raw reads give them), so plans and fingerprints agree.
 */
export function decodeDocument(raw: RawDocument, file: string): Document {
  try {
    return BSON.deserialize(raw.bytes, { promoteValues: false });
  } catch (error) {
    throw corrupt(file, raw.offset, `the document there cannot be decoded (${(error as Error).message})`);
  }
}
