import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BSON, type Document } from 'mongodb';
import { decodeDocument, readBsonFile } from '../../src/store/bson-stream.js';
import type { Collections } from './data.js';

/** Writes a data set as mongodump does: `<collection>.bson` and `.metadata.json` (both `.gz` with gzip). */
export function writeDump(dir: string, data: Collections, options: { gzip?: boolean } = {}): string {
  mkdirSync(dir, { recursive: true });
  const suffix = options.gzip ? '.gz' : '';
  const pack = (bytes: Buffer) => (options.gzip ? gzipSync(bytes) : bytes);
  for (const [collection, documents] of data) {
    const bson = Buffer.concat(documents.map((document) => BSON.serialize(document)));
    writeFileSync(join(dir, `${collection}.bson${suffix}`), pack(bson));
    const metadata = {
      indexes: [{ v: 2, key: { _id: 1 }, name: '_id_' }],
      uuid: '00000000000000000000000000000000',
      collectionName: collection,
      type: 'collection',
    };
    writeFileSync(
      join(dir, `${collection}.metadata.json${suffix}`),
      pack(Buffer.from(BSON.EJSON.stringify(metadata, { relaxed: false }))),
    );
  }
  return dir;
}

/** Every collection of a dump folder, read back from its files. */
export async function readDump(dir: string): Promise<Map<string, Document[]>> {
  const collections = new Map<string, Document[]>();
  for (const name of readdirSync(dir).sort()) {
    const match = /^(.+)\.bson(\.gz)?$/.exec(name);
    if (!match?.[1]) continue;
    const file = join(dir, name);
    const documents: Document[] = [];
    for await (const raw of readBsonFile(file)) documents.push(decodeDocument(raw, file));
    collections.set(match[1], documents);
  }
  return collections;
}
