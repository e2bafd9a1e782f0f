import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { losslessTree, typed } from './canonical-json.js';

/**
 * A worker thread that reads and parses a large snapshot file, so that the main thread's event loop keeps
 * turning (a Ctrl-C is seen at once; parsing 100 MB takes seconds). The documents go back as canonical Extended
 * JSON (plain data), one batch each time the main thread asks for the next: it revives one batch at a time and
 * is never handed the whole file's worth of work in one go.
 */

/** What the worker says; `failure`s are turned into the same refusals as the in-thread parse's. */
export type ReaderMessage =
  | { kind: 'digest'; digest: string }
  | { kind: 'collection'; name: string }
  | { kind: 'documents'; name: string; documents: unknown[] }
  | { kind: 'done' }
  | { kind: 'failure'; problem: 'read'; code: string }
  | { kind: 'failure'; problem: 'invalid'; message: string }
  | { kind: 'failure'; problem: 'not-object' }
  | { kind: 'failure'; problem: 'not-array'; name: string };

/** A batch is at most this many documents, and at most this many values (a journal chunk holds 1,000 ids). */
const BATCH_DOCUMENTS = 1_000;
const BATCH_VALUES = 20_000;

/** Objects, arrays and scalars in a value: what reviving it costs. */
function weight(value: unknown): number {
  if (value === null || typeof value !== 'object') return 1;
  let total = 1;
  for (const item of Object.values(value)) total += weight(item);
  return total;
}

const port = parentPort;

async function send(message: ReaderMessage): Promise<void> {
  port?.postMessage(message);
  if (message.kind !== 'done' && message.kind !== 'failure')
    await once(port as NonNullable<typeof port>, 'message');
}

async function read(file: string): Promise<void> {
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    return send({ kind: 'failure', problem: 'read', code: String((error as NodeJS.ErrnoException).code) });
  }
  await send({ kind: 'digest', digest: createHash('sha256').update(text).digest('hex') });
  let parsed: unknown;
  try {
    const tree = losslessTree(text);
    text = undefined;
    parsed = typed(tree);
  } catch (error) {
    return send({ kind: 'failure', problem: 'invalid', message: (error as Error).message });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return send({ kind: 'failure', problem: 'not-object' });
  }
  for (const [name, documents] of Object.entries(parsed)) {
    if (!Array.isArray(documents)) return send({ kind: 'failure', problem: 'not-array', name });
    await send({ kind: 'collection', name });
    let batch: unknown[] = [];
    let values = 0;
    for (const [index, document] of documents.entries()) {
      // Dropped as it is sent, so the worker's copy shrinks while the main thread's grows.
      documents[index] = undefined;
      batch.push(document);
      values += weight(document);
      if (batch.length >= BATCH_DOCUMENTS || values >= BATCH_VALUES) {
        await send({ kind: 'documents', name, documents: batch });
        batch = [];
        values = 0;
      }
    }
    if (batch.length > 0) await send({ kind: 'documents', name, documents: batch });
  }
  return send({ kind: 'done' });
}

if (port) await read((workerData as { file: string }).file);
