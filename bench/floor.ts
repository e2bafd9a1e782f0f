import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { BSON } from 'mongodb';
import type { Measured } from './baseline.js';
import { stopwatch } from './stopwatch.js';

/**
 * The floor a dump's reader is compared with: every document of every `.bson` file of the folder read and
 * decoded by the driver's BSON, one after the other, in one process, with nothing else done with it. No tool
 * that reads the whole dump can be faster than this on the same machine.
 */
export async function decodeFloor(dir: string): Promise<Measured> {
  const watch = stopwatch();
  let documents = 0;
  for (const name of (await readdir(dir)).filter((file) => file.endsWith('.bson')).sort()) {
    documents += await decodeFile(path.join(dir, name));
  }
  return { modified: documents, commands: 0, seconds: watch.seconds(), cpuSeconds: watch.cpuSeconds() };
}

async function decodeFile(file: string): Promise<number> {
  let documents = 0;
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer]);
    let offset = 0;
    while (pending.length - offset >= 4) {
      const size = pending.readInt32LE(offset);
      if (pending.length - offset < size) break;
      BSON.deserialize(pending.subarray(offset, offset + size));
      documents += 1;
      offset += size;
    }
    pending = pending.subarray(offset);
  }
  if (pending.length > 0) throw new Error(`${file}: ${pending.length} bytes after the last whole document`);
  return documents;
}
