import { join } from 'node:path';
import { after, describe } from 'node:test';
import { type Document, MongoClient } from 'mongodb';
import { type OpenOptions, openStore } from '../../src/store/index.js';
import type { MongoLimits } from '../../src/store/mongo.js';
import type { Store, StoreTarget, TransactionStore } from '../../src/store/types.js';
import { startWirePeer, type WirePeer, type WirePeerOptions } from '../wire-peer/index.js';
import { type Backend, testOn } from './backends.js';
import { runCli, tempDir } from './cli.js';
import { type Collections, demoData } from './data.js';
import { withAppName } from './mongo-server.js';

/**
 * Faults on a MongoDB back end (the wire peer, or a real replica set started with enableTestCommands): the
 * server's own fail point, scoped to the tool under test by its appName, and a store that acts at a chosen point
 * of the transaction, the way a concurrent writer, a failover or an operator would.
 */

/** Committing and settling bounded for tests: the defaults (README, "Safety guarantees") are minutes. */
export const TEST_LIMITS: Partial<MongoLimits> = {
  commitMs: 5_000,
  majorityWaitMs: 2_000,
  settleMs: 2_500,
  fenceWaitMs: 400,
  confirmMs: 400,
  clientGraceMs: 300,
  pauseMs: 300,
};

export async function withClient<T>(uri: string, work: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 5_000 });
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

/** The server's own fail point command: the same on the peer and on a mongod with enableTestCommands. */
export function failCommand(uri: string, mode: unknown, data: Document): Promise<unknown> {
  return withClient(uri, (client) =>
    client.db('admin').command({ configureFailPoint: 'failCommand', mode, data }),
  );
}

/** With a fail point on, then off again, whatever happened. */
export async function withFailPoint(
  uri: string,
  mode: unknown,
  data: Document,
  work: () => Promise<void>,
): Promise<void> {
  await failCommand(uri, mode, data);
  try {
    await work();
  } finally {
    await failCommand(uri, 'off', {});
  }
}

/**
 * Where `during` acts: at the transaction's first update, right after its last write (the journal head, just
 * before the commit would be sent), or once the transaction failed (its commit's answer lost, say).
 */
export type Moment = 'first-update' | 'last-write' | 'after-transaction-fails';

/**
 * The store the CLI opens, with TEST_LIMITS (and `options`), calling `when` at `at` with the server's URI
 * without the tool's appName (so a helper client is never hit by the tool's fail points).
 */
export function during(
  when: (uri: string) => Promise<void>,
  at: Moment = 'first-update',
  options: OpenOptions = {},
): (target: StoreTarget, openOptions?: OpenOptions) => Promise<Store> {
  return acting({ [at]: when }, options);
}

/** The same, acting at several moments of one run. */
export function acting(
  hooks: Partial<Record<Moment, (uri: string) => Promise<void>>>,
  options: OpenOptions = {},
): (target: StoreTarget, openOptions?: OpenOptions) => Promise<Store> {
  return async (target, openOptions = {}) => {
    const store = await openStore(target, { ...openOptions, limits: TEST_LIMITS, ...options });
    const uri = target.kind === 'mongodb' ? withAppName(target.uri, undefined) : '';
    const wrapped: Store = Object.create(store);
    const done = new Set<Moment>();
    const once = async (moment: Moment) => {
      const hook = hooks[moment];
      if (!hook || done.has(moment)) return;
      done.add(moment);
      await hook(uri);
    };
    wrapped.transaction = async (work, transactionOptions) => {
      try {
        return await store.transaction((tx) => {
          const tapped: TransactionStore = Object.create(tx);
          tapped.updateMany = async (...args) => {
            await once('first-update');
            return tx.updateMany(...args);
          };
          tapped.insertMany = async (collection, documents) => {
            await tx.insertMany(collection, documents);
            if (documents.some((document) => document.type === 'migration')) await once('last-write');
          };
          return work(tapped);
        }, transactionOptions);
      } catch (error) {
        await once('after-transaction-fails');
        throw error;
      }
    };
    return wrapped;
  };
}

/** The CLI's store with TEST_LIMITS and nothing else changed. */
export function withTestLimits(options: OpenOptions = {}) {
  return (target: StoreTarget, openOptions: OpenOptions = {}) =>
    openStore(target, { ...openOptions, limits: TEST_LIMITS, ...options });
}

/**
 * One migration's set-up on a driver back end: the data loaded, a history file, the CLI pointed at the data
 * with an appName of its own, and fail points scoped to that appName (so a real server shared with other test
 * files fails only this run's commands).
 */
export function faultRunner(backend: Backend, dir: string, label: string, args: string[]) {
  let runs = 0;
  return async (data: Collections) => {
    runs += 1;
    const loaded = await backend.load(data);
    const history = join(dir, `history-${runs}.json`);
    const appName = `agm-${label}-${process.pid}-${runs}`;
    const admin = loaded.target.kind === 'mongodb' ? loaded.target.uri : '';
    const uri = withAppName(admin, appName);
    const cli = (env: Parameters<typeof runCli>[1] = {}, extra: string[] = []) =>
      runCli([...args, ...extra, '--uri', uri, '--output-file', history], {
        openStore: withTestLimits(),
        ...env,
      });
    return {
      loaded,
      history,
      /** The server's URI without the tool's appName: for helper clients and fail point commands. */
      admin,
      uri,
      appName,
      cli,
      /** A fail point on this run's commands only. */
      failPoint: (mode: unknown, data: Document, work: () => Promise<void>) =>
        withFailPoint(admin, mode, { ...data, appName }, work),
      setFailPoint: (mode: unknown, data: Document) => failCommand(admin, mode, { ...data, appName }),
      before: await loaded.state(),
    };
  };
}

export interface PeerRun {
  peer: WirePeer;
  uri: string;
  history: string;
  cli: (args: string[], env?: Parameters<typeof runCli>[1]) => ReturnType<typeof runCli>;
}

/**
 * For what only the wire peer can play (roles, old servers, a lost majority): a peer of its own with the demo
 * data in `agmission`, the CLI pointed at it (with `params` in the URI), closed when `work` ends.
 */
export function peerRunner(dir: string) {
  let runs = 0;
  return async (
    { params = {}, ...options }: WirePeerOptions & { params?: Record<string, string> },
    work: (context: PeerRun) => Promise<void>,
  ): Promise<void> => {
    // Loaded as a primary (a secondary refuses writes), then playing the role asked for.
    const secondary = options.role === 'secondary';
    const peer = await startWirePeer(secondary ? { ...options, role: 'primary' } : options);
    await withClient(peer.uri('agmission', { directConnection: 'true' }), async (client) => {
      for (const [name, documents] of demoData()) {
        if (documents.length > 0) await client.db('agmission').collection(name).insertMany(documents);
      }
    });
    if (secondary) peer.setRole('secondary');
    peer.clearLog();
    runs += 1;
    const history = join(dir, `peer-${runs}.json`);
    const uri = peer.uri('agmission', params);
    const cli = (args: string[], env: Parameters<typeof runCli>[1] = {}) =>
      runCli([...args, '--uri', uri, '--output-file', history], env);
    try {
      await work({ peer, uri, history, cli });
    } finally {
      await peer.close();
    }
  };
}

/** A suite of what only the wire peer can play: `onPeer` gives each test a peer of its own. */
export function peerSuite(
  title: string,
  body: (suite: {
    onPeer: ReturnType<typeof peerRunner>;
    test: (name: string, fn: () => Promise<void>) => void;
    dir: string;
  }) => void,
): void {
  describe(title, () => {
    const dir = tempDir();
    after(() => dir.remove());
    body({
      onPeer: peerRunner(dir.path),
      test: testOn({ name: 'wire peer', skip: false } as Backend),
      dir: dir.path,
    });
  });
}
