import type { Document } from 'mongodb';
import type { Cursors } from '../cursors.js';
import { Code, CommandError } from '../errors.js';
import type { FailCommand } from '../fail-points.js';
import type { Identity } from '../handshake.js';
import type { Replication } from '../replication.js';
import { type Collection, ReadView, type Storage } from '../storage.js';
import type { SessionContext, Sessions } from '../transactions.js';

/** Everything a command handler may touch. */
export interface PeerState {
  readonly storage: Storage;
  readonly replication: Replication;
  readonly cursors: Cursors;
  readonly sessions: Sessions;
  readonly failCommand: FailCommand;
  readonly identity: Identity;
  readonly settings: PeerSettings;
  readonly openConnections: () => number;
}

export interface PeerSettings {
  cacheSizeBytes: number;
  /** serverStatus wiredTiger.cache: what the live workload has dirtied, and the bytes of its updates. */
  cacheDirtyBytes: number;
  cacheUpdatesBytes: number;
  /** `storage.wiredTiger.engineConfig.configString`, as getCmdLineOpts reports the startup options. */
  readonly engineConfigString: string;
  /** Server parameters (getParameter / setParameter), mongod's own. */
  transactionLifetimeLimitSeconds: number;
  minSnapshotHistoryWindowInSeconds: number;
  transactionTooLargeForCacheThreshold: number;
  wiredTigerEngineRuntimeConfig: string;
  /** A committed transaction is hidden this long from reads that do not wait for it (afterClusterTime). */
  commitVisibilityLagMs: number;
  readonly startedAt: number;
}

/** One command being run. */
export interface CommandRun {
  readonly peer: PeerState;
  readonly db: string;
  readonly name: string;
  /** The command with numbers as JS numbers (filters, updates, options). */
  readonly command: Document;
  /** The command with BSON number types kept (documents that get stored). */
  typed(): Document;
  readonly session: SessionContext;
}

export type Handler = (run: CommandRun) => Document | Promise<Document>;

/** The collection a command names in its first field (`{find: 'jobs'}`). */
export function collectionName(run: CommandRun): string {
  const name = run.command[run.name];
  if (typeof name !== 'string' || name === '') {
    throw new CommandError(Code.InvalidOptions, `${run.name} needs a collection name`);
  }
  return name;
}

export function namespace(run: CommandRun, collection: string): string {
  return `${run.db}.${collection}`;
}

export function existingCollection(run: CommandRun, name: string): Collection | undefined {
  return run.peer.storage.collection(run.db, name);
}

/** What a read sees: its transaction's snapshot and writes, or committed data at its read time. */
export function readView(run: CommandRun): ReadView {
  return (
    run.session.transaction?.writer.view ??
    new ReadView(run.peer.storage, run.session.readTs, undefined, run.session.hidesApplying)
  );
}

/** Fields every command may carry (sessions, concerns, routing); what is left are the command's own options. */
const GENERIC_FIELDS = new Set([
  '$db',
  'lsid',
  'txnNumber',
  'autocommit',
  'startTransaction',
  'readConcern',
  'writeConcern',
  '$clusterTime',
  '$readPreference',
  'maxTimeMS',
  'comment',
  'apiVersion',
  'apiStrict',
  'apiDeprecationErrors',
]);

export function commandOptions(run: CommandRun): Document {
  return Object.fromEntries(
    Object.entries(run.command).filter(([key]) => key !== run.name && !GENERIC_FIELDS.has(key)),
  );
}
