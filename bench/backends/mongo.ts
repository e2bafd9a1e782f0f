import { MongoClient } from 'mongodb';
import { type MongoServer, startMongo, withDatabase } from '../../test/helpers/mongo-server.js';
import { createSeed, insertSeed } from '../seed.js';
import type { Backing, BenchBackend } from './index.js';

/** A database per run on a server reached through the driver (a real MongoDB, or the wire peer). */
export async function serverBacking(server: MongoServer): Promise<Backing> {
  const client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  const runId = `${process.pid}_${Date.now().toString(36)}`;
  return {
    async prepare(n, copy) {
      const name = `agm_bench_${runId}_${n}_${copy}`;
      const db = client.db(name);
      await insertSeed(db, createSeed(n));
      return { target: withDatabase(server.uri, name), dispose: async () => void (await db.dropDatabase()) };
    },
    async close() {
      await client.close();
      await server.stop();
    },
  };
}

/** MONGODB_TEST_URI, or a local mongod for mongodb-memory-server (--download lets it fetch one). */
export const mongoBackend: BenchBackend = {
  label: 'mongodb',
  access: 'mongo',
  baselineMax: Number.POSITIVE_INFINITY,
  copies: [['engine'], ['baseline']],
  async open({ download }) {
    if (download) process.env.MONGOMS_RUNTIME_DOWNLOAD = 'true';
    else process.env.MONGOMS_RUNTIME_DOWNLOAD ??= 'false';
    const server = await startMongo();
    if ('skip' in server) return `${server.skip}; --download lets mongodb-memory-server fetch one`;
    return serverBacking(server);
  },
};
