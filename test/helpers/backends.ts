import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BSON, type Document, MongoClient } from 'mongodb';
import { openReadOnlyStore } from '../../src/store/index.js';
import { parseSnapshot, serializeSnapshot } from '../../src/store/snapshot.js';
import { collect, type StoreTarget } from '../../src/store/types.js';
import { startWirePeer, type WirePeer } from '../wire-peer/index.js';
import { runCli, tempDir } from './cli.js';
import type { Collections } from './data.js';
import { readDump, writeDump } from './dump.js';
import { type MongoServer, startMongo, withDatabase } from './mongo-server.js';

/** One data set loaded into a back end, and the command-line arguments that point the tool at it. */
export interface Loaded {
  args: string[];
  /** The same place as a store target, for tests that open the store directly. */
  target: StoreTarget;
  /** Every collection, documents sorted by _id. */
  dump(): Promise<Record<string, Document[]>>;
  /** The whole data set as canonical Extended JSON: equal strings mean equal data, types included. */
  state(): Promise<string>;
}

export interface Backend {
  /** 'wire peer' is the in-process fake server (test/wire-peer): the driver's side, not MongoDB's. */
  name: 'snapshot' | 'dump' | 'gzip dump' | 'wire peer' | 'mongodb';
  /** Why this back end's tests are skipped, or false when they run. */
  skip: string | false;
  load(data: Collections): Promise<Loaded>;
  close(): Promise<void>;
}

const byId = (a: Document, b: Document) => String(a._id).localeCompare(String(b._id));

function sorted(collections: Iterable<[string, Document[]]>): Record<string, Document[]> {
  return Object.fromEntries([...collections].map(([name, documents]) => [name, [...documents].sort(byId)]));
}

function stateOf(dump: Record<string, Document[]>): string {
  return BSON.EJSON.stringify(dump, { relaxed: false });
}

export function snapshotBackend(): Backend {
  const dir = tempDir();
  let files = 0;
  return {
    name: 'snapshot',
    skip: false,
    async load(data) {
      files += 1;
      const file = join(dir.path, `data-${files}.json`);
      writeFileSync(file, serializeSnapshot(data));
      const dump = async () => sorted(parseSnapshot(readFileSync(file, 'utf8'), file));
      return {
        args: ['--snapshot', file],
        target: { kind: 'snapshot', file },
        dump,
        state: async () => stateOf(await dump()),
      };
    },
    async close() {
      dir.remove();
    },
  };
}

/** A mongodump folder per load (`.bson`, or `.bson.gz` as `mongodump --gzip` writes). */
export function dumpBackend(options: { gzip?: boolean } = {}): Backend {
  const dir = tempDir();
  let folders = 0;
  return {
    name: options.gzip ? 'gzip dump' : 'dump',
    skip: false,
    async load(data) {
      folders += 1;
      const folder = writeDump(join(dir.path, `dump-${folders}`, 'agmission'), data, options);
      const dump = async () => sorted(await readDump(folder));
      return {
        args: ['--dump', folder],
        target: { kind: 'dump', dir: folder },
        dump,
        state: async () => stateOf(await dump()),
      };
    },
    async close() {
      dir.remove();
    },
  };
}

/** A real server when one is available (MONGODB_TEST_URI, or a local mongod for mongodb-memory-server). */
export async function mongoBackend(label: string): Promise<Backend> {
  const server = await startMongo();
  if ('skip' in server) {
    return {
      name: 'mongodb',
      skip: server.skip,
      load: () => Promise.reject(new Error(server.skip)),
      close: async () => {},
    };
  }
  return driverBackend('mongodb', label, server);
}

/**
 * The wire peer as a replica-set primary, always available: the unmodified driver and tool against it.
 * A test that reads the peer's command log passes its own peer (closed with the back end).
 */
export async function wirePeerBackend(label: string, peer?: WirePeer): Promise<Backend> {
  const server = peer ?? (await startWirePeer());
  return driverBackend('wire peer', label, { uri: server.uri(), stop: () => server.close() });
}

/** A server the tool reaches through the driver: each load is a fresh database, dropped at the end. */
async function driverBackend(
  name: 'mongodb' | 'wire peer',
  label: string,
  server: MongoServer,
): Promise<Backend> {
  const client = await MongoClient.connect(server.uri);
  const databases: string[] = [];
  return {
    name,
    skip: false,
    async load(data) {
      const database = `agm_test_${label}_${process.pid}_${databases.length + 1}`;
      databases.push(database);
      const db = client.db(database);
      await db.dropDatabase();
      for (const [collection, documents] of data) {
        await db.createCollection(collection);
        if (documents.length > 0) await db.collection(collection).insertMany(structuredCloneBson(documents));
      }
      // withDatabase keeps credentials authenticating where the server's URI said (authSource).
      const uri = withDatabase(server.uri, database);
      const dump = async () => {
        const entries: [string, Document[]][] = [];
        for (const collection of data.keys()) {
          entries.push([collection, await db.collection(collection).find().sort({ _id: 1 }).toArray()]);
        }
        return sorted(entries);
      };
      return {
        args: ['--uri', uri],
        target: { kind: 'mongodb', uri },
        dump,
        state: async () => stateOf(await dump()),
      };
    },
    async close() {
      for (const database of databases) await client.db(database).dropDatabase();
      await client.close();
      await server.stop();
    },
  };
}

/** insertMany adds _id to the objects it is given; copy so the caller's data set stays as it was. */
function structuredCloneBson(documents: Document[]): Document[] {
  return BSON.EJSON.parse(BSON.EJSON.stringify(documents, { relaxed: false }), {
    relaxed: false,
  }) as Document[];
}

/** Every back end: the snapshot file, a dump folder, the wire peer, and a real MongoDB (skipped when there is none). */
export async function allBackends(label: string): Promise<Backend[]> {
  return [snapshotBackend(), dumpBackend(), await wirePeerBackend(label), await mongoBackend(label)];
}

/**
 * `test`, skipped with the back end's reason when it is unavailable. Skipping each test rather than the suite
 * makes the runner's summary count every test a missing server skips.
 */
export function testOn(backend: Backend): (name: string, fn: () => Promise<void>) => void {
  return (name, fn) => {
    test(name, { skip: backend.skip }, fn);
  };
}

/**
 * Runs the tool on a fresh copy of a data set in this back end, with its own history file in `dir`, and
 * returns the data before and after (as documents and as canonical state strings) with the result.
 */
export function scenarioRunner(backend: Backend, dir: string) {
  let runs = 0;
  return async (data: Collections, args: string[]) => {
    const loaded = await backend.load(data);
    runs += 1;
    const history = join(dir, `history-${runs}.json`);
    const before = await loaded.dump();
    const beforeState = await loaded.state();
    const result = await runCli([...args, ...loaded.args, '--output-file', history]);
    return {
      result,
      before,
      after: await loaded.dump(),
      beforeState,
      afterState: await loaded.state(),
      history,
    };
  };
}

/** The journal collection as the tool wrote it, read through the store contract on any back end. */
export async function journalOf(target: StoreTarget): Promise<Document[]> {
  const store = await openReadOnlyStore(target);
  try {
    return await collect(store.find('customer_migrations', {}));
  } finally {
    await store.close();
  }
}
