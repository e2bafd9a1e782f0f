import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { BSON, Double, Int32, Long, ObjectId } from 'mongodb';
import { UsageError } from '../../src/shared/errors.js';
import { decodeDocument, readBsonFile } from '../../src/store/bson-stream.js';
import { tempDir } from '../helpers/cli.js';

const dir = tempDir();
after(() => dir.remove());

const documents = [
  {
    _id: new ObjectId('64b000000000000000000001'),
    n: new Int32(1),
    x: new Double(2),
    big: Long.fromString('9007199254740993'),
  },
  { _id: 'two', text: 'é'.repeat(3000), at: new Date(0) },
  { _id: new ObjectId('64b000000000000000000003'), list: [1, 2, 3] },
];
const bytes = Buffer.concat(documents.map((document) => BSON.serialize(document)));

function write(name: string, content: Buffer): string {
  const file = join(dir.path, name);
  writeFileSync(file, content);
  return file;
}

async function readAll(file: string) {
  const read = [];
  for await (const raw of readBsonFile(file))
    read.push({ offset: raw.offset, document: decodeDocument(raw, file) });
  return read;
}

const damaged = (message: RegExp) => (error: unknown) => {
  assert.ok(error instanceof UsageError, String(error));
  assert.match(error.message, message);
  return true;
};

test('reads each document with its offset, plain and gzip, numbers keeping their BSON types', async () => {
  for (const file of [write('plain.bson', bytes), write('packed.bson.gz', gzipSync(bytes))]) {
    const read = await readAll(file);
    assert.deepEqual(
      read.map((entry) => entry.offset),
      [
        0,
        BSON.serialize(documents[0] as object).length,
        bytes.length - BSON.serialize(documents[2] as object).length,
      ],
    );
    const [first] = read;
    assert.ok(first?.document.n instanceof Int32);
    assert.ok(first?.document.x instanceof Double);
    assert.equal(String(first?.document.big), '9007199254740993');
    assert.equal(
      BSON.EJSON.stringify(
        read.map((entry) => entry.document),
        { relaxed: false },
      ),
      BSON.EJSON.stringify(documents, { relaxed: false }),
    );
  }
});

test('an empty file has no documents', async () => {
  assert.deepEqual(await readAll(write('empty.bson', Buffer.alloc(0))), []);
});

test('a file cut short inside the last document is refused with the file and the offset of that document', async () => {
  const cut = bytes.subarray(0, bytes.length - 3);
  const start = bytes.length - BSON.serialize(documents[2] as object).length;
  for (const [name, content] of [
    ['cut.bson', cut],
    ['cut.bson.gz', gzipSync(cut)],
  ] as const) {
    const file = write(name, content);
    await assert.rejects(
      readAll(file),
      damaged(new RegExp(`${file} is damaged at byte ${start}.*cut short`)),
    );
  }
  const file = write('stub.bson', bytes.subarray(0, 2));
  await assert.rejects(readAll(file), damaged(new RegExp(`${file} is damaged at byte 0`)));
});

test('an impossible length, or a document without its closing zero, is refused at its offset', async () => {
  const badLength = Buffer.from(bytes);
  const second = BSON.serialize(documents[0] as object).length;
  badLength.writeInt32LE(3, second);
  const file = write('length.bson', badLength);
  await assert.rejects(
    readAll(file),
    damaged(new RegExp(`${file} is damaged at byte ${second}: a document length of 3`)),
  );
  const noZero = Buffer.from(bytes);
  noZero[second - 1] = 7;
  const other = write('zero.bson', noZero);
  await assert.rejects(readAll(other), damaged(new RegExp(`${other} is damaged at byte 0: .*zero byte`)));
});

test('a .gz that does not inflate is refused naming the file', async () => {
  const file = write('bad.bson.gz', bytes);
  await assert.rejects(readAll(file), damaged(new RegExp(`${file} is not a gzip file that inflates`)));
  const truncated = gzipSync(bytes);
  const cutGzip = write('cut-gzip.bson.gz', truncated.subarray(0, truncated.length - 10));
  await assert.rejects(readAll(cutGzip), damaged(new RegExp(`${cutGzip} is not a gzip file that inflates`)));
});

test('a missing file is refused as unreadable', async () => {
  const file = join(dir.path, 'missing.bson');
  await assert.rejects(readAll(file), damaged(new RegExp(`Cannot read dump file ${file}: ENOENT`)));
});

test('documents cut by the edges of the file reads (a megabyte each), and one longer than a read, come whole and at their offsets', async () => {
  // Sizes that put document edges at, just before and just after each read's end, and one of 2.5 MB.
  const sizes = [1, 2, 3, 4, 5, 700, 4093, 65_536, 2_500_000, 17, 300_001, 1_048_573];
  const many = Array.from({ length: 40 }, (_, i) => ({
    _id: i,
    pad: 'x'.repeat(sizes[i % sizes.length] as number),
  }));
  const content = Buffer.concat(many.map((document) => BSON.serialize(document)));
  for (const file of [write('edges.bson', content), write('edges.bson.gz', gzipSync(content))]) {
    const read = await readAll(file);
    let offset = 0;
    const expected = many.map((document) => {
      const at = offset;
      offset += BSON.serialize(document).length;
      return { offset: at, document: BSON.deserialize(BSON.serialize(document), { promoteValues: false }) };
    });
    assert.equal(read.length, many.length);
    assert.deepEqual(read, expected);
  }
});
