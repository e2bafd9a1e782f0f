import { BSON, type Document } from 'mongodb';
import { decodePlain, decodeTyped } from './documents.js';

/** Wire protocol opcodes this peer reads or writes. */
const OP_REPLY = 1;
export const OP_QUERY = 2004;
const OP_MSG = 2013;

const HEADER_BYTES = 16;
const CHECKSUM_PRESENT = 1;
const MORE_TO_COME = 2;

/** One command as received, whichever opcode carried it. */
export interface Request {
  requestId: number;
  opcode: typeof OP_QUERY | typeof OP_MSG;
  /** The command with numbers as JS numbers; OP_MSG document sequences are merged in as array fields. */
  command: Document;
  /** The same command with BSON number types kept, decoded on first use (for documents that get stored). */
  typed(): Document;
  /** OP_MSG moreToCome: the client expects no reply. */
  moreToCome: boolean;
}

/**
 * Splits a byte stream into messages: every message starts with its int32 length. Chunks are kept in a list
 * and joined once a whole message is there, so a large insert arriving in many chunks is copied once.
 */
export class MessageSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The length of the message being received, once its first 4 bytes are in. */
  private expected: number | undefined;

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const messages: Buffer[] = [];
    for (;;) {
      if (this.expected === undefined) {
        if (this.buffered < 4) break;
        const first = this.chunks[0] as Buffer;
        this.expected = (first.length >= 4 ? first : this.join()).readInt32LE(0);
      }
      if (this.buffered < this.expected) break;
      const all = this.join();
      messages.push(all.subarray(0, this.expected));
      const rest = all.subarray(this.expected);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.expected = undefined;
    }
    return messages;
  }

  private join(): Buffer {
    const joined = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }
}

export function parseMessage(message: Buffer): Request {
  const requestId = message.readInt32LE(4);
  const opcode = message.readInt32LE(12);
  if (opcode === OP_MSG) return parseOpMsg(message, requestId);
  if (opcode === OP_QUERY) return parseOpQuery(message, requestId);
  throw new Error(`wire peer: unsupported opcode ${opcode}`);
}

function cString(buffer: Buffer, offset: number): { value: string; next: number } {
  const end = buffer.indexOf(0, offset);
  return { value: buffer.toString('utf8', offset, end), next: end + 1 };
}

function parseOpMsg(message: Buffer, requestId: number): Request {
  const flags = message.readUInt32LE(HEADER_BYTES);
  // The CRC-32C trailer is skipped, not checked: the driver only adds one when asked, and TCP on loopback
  // does not corrupt bytes.
  const end = flags & CHECKSUM_PRESENT ? message.length - 4 : message.length;
  let offset = HEADER_BYTES + 4;
  let body: Buffer | undefined;
  const sequences: { field: string; documents: Buffer[] }[] = [];
  while (offset < end) {
    const kind = message.readUInt8(offset);
    offset += 1;
    const size = message.readInt32LE(offset);
    if (kind === 0) {
      body = message.subarray(offset, offset + size);
    } else if (kind === 1) {
      const { value: field, next } = cString(message, offset + 4);
      const documents: Buffer[] = [];
      for (let at = next; at < offset + size; ) {
        const length = message.readInt32LE(at);
        documents.push(message.subarray(at, at + length));
        at += length;
      }
      sequences.push({ field, documents });
    } else {
      throw new Error(`wire peer: unknown OP_MSG section kind ${kind}`);
    }
    offset += size;
  }
  if (!body) throw new Error('wire peer: OP_MSG without a body section');
  const bodyBytes = body;
  const merge = (decode: (bytes: Uint8Array) => Document): Document => {
    const command = decode(bodyBytes);
    for (const { field, documents } of sequences) command[field] = documents.map(decode);
    return command;
  };
  let typed: Document | undefined;
  return {
    requestId,
    opcode: OP_MSG,
    command: merge(decodePlain),
    typed: () => {
      typed ??= merge(decodeTyped);
      return typed;
    },
    moreToCome: (flags & MORE_TO_COME) !== 0,
  };
}

function parseOpQuery(message: Buffer, requestId: number): Request {
  const { value: collection, next } = cString(message, HEADER_BYTES + 4);
  // numberToSkip and numberToReturn (8 bytes) mean nothing for a command.
  const queryAt = next + 8;
  const query = message.subarray(queryAt, queryAt + message.readInt32LE(queryAt));
  // An OP_QUERY command may be wrapped as {$query: {...}, $readPreference: ...}.
  const unwrap = (document: Document) => ('$query' in document ? document.$query : document) as Document;
  const command = unwrap(decodePlain(query));
  command.$db = collection.replace(/\.\$cmd$/, '');
  return {
    requestId,
    opcode: OP_QUERY,
    command,
    typed: () => ({ ...unwrap(decodeTyped(query)), $db: command.$db }),
    moreToCome: false,
  };
}

function header(length: number, requestId: number, responseTo: number, opcode: number): Buffer {
  const buffer = Buffer.alloc(HEADER_BYTES);
  buffer.writeInt32LE(length, 0);
  buffer.writeInt32LE(requestId, 4);
  buffer.writeInt32LE(responseTo, 8);
  buffer.writeInt32LE(opcode, 12);
  return buffer;
}

let nextReplyId = 1;

/** The reply to `request` in the opcode the client used: OP_REPLY for OP_QUERY, else OP_MSG kind 0. */
export function encodeReply(request: Request, reply: Document): Buffer {
  const body = BSON.serialize(reply);
  const replyId = nextReplyId++;
  if (request.opcode === OP_QUERY) {
    // responseFlags, cursorID (int64 0), startingFrom, numberReturned = 1.
    const prefix = Buffer.alloc(20);
    prefix.writeInt32LE(1, 16);
    const length = HEADER_BYTES + prefix.length + body.length;
    return Buffer.concat([header(length, replyId, request.requestId, OP_REPLY), prefix, body]);
  }
  // flagBits 0, then section kind 0.
  const prefix = Buffer.from([0, 0, 0, 0, 0]);
  const length = HEADER_BYTES + prefix.length + body.length;
  return Buffer.concat([header(length, replyId, request.requestId, OP_MSG), prefix, body]);
}
