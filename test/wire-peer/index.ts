import { setTimeout as delay } from 'node:timers/promises';
import type { PeerSettings, PeerState } from './commands/context.js';
import { Cursors } from './cursors.js';
import { Dispatcher } from './dispatch.js';
import { FailCommand, type FailPointConfig } from './fail-points.js';
import type { Identity, Role } from './handshake.js';
import type { CommandLogEntry } from './log.js';
import { Replication } from './replication.js';
import { WireServer } from './server.js';
import { Storage } from './storage.js';
import { Sessions } from './transactions.js';

export type { FailCommandData, FailPointConfig, FailPointMode } from './fail-points.js';
export type { Role } from './handshake.js';
export type { CommandLogEntry } from './log.js';

export interface WirePeerOptions {
  /** Default 'primary' (of a one-member replica set). */
  role?: Role;
  /** Default 'rs0'. */
  setName?: string;
  /** Default 21 (MongoDB 7.0); 8 plays MongoDB 4.2. */
  maxWireVersion?: number;
  /** Default true; false plays a server without the `hello` command (before 4.4.2 / 4.2.10). */
  helloCommand?: boolean;
  /** serverStatus wiredTiger.cache['maximum bytes configured']; default 256 MiB. */
  cacheSizeBytes?: number;
  /** An open transaction is aborted after this long, as by transactionLifetimeLimitSeconds; default 60. */
  transactionLifetimeLimitSeconds?: number;
  /** serverStatus wiredTiger.cache['tracked dirty bytes in the cache']: the live workload's; default 0. */
  cacheDirtyBytes?: number;
  /** serverStatus wiredTiger.cache['bytes allocated for updates']; default 0. */
  cacheUpdatesBytes?: number;
  /** How long snapshot history is kept (5.0+); default 300. */
  minSnapshotHistoryWindowInSeconds?: number;
  /** The startup `storage.wiredTiger.engineConfig.configString` getCmdLineOpts reports; default none. */
  wiredTigerEngineConfigString?: string;
  /**
   * A committed transaction stays invisible this long to reads outside transactions that do not wait for it
   * (no afterClusterTime, not snapshot), as a multi-shard commit still being applied; default 0.
   */
  commitVisibilityLagMs?: number;
}

export interface WirePeer {
  readonly host: string;
  readonly port: number;
  /** `mongodb://127.0.0.1:<port>/<database>`, with `replicaSet` for a replica set member, then `params`. */
  uri(database?: string, params?: Record<string, string>): string;
  /** Every command received, monitoring included (marked `monitoring`). */
  readonly log: readonly CommandLogEntry[];
  clearLog(): void;
  /** How hello answers from now on; a secondary also refuses writes and primary reads, as one does. */
  setRole(role: Role): void;
  setCacheSizeBytes(bytes: number): void;
  /** What serverStatus reports the live workload has dirtied in the cache (and its update bytes). */
  setCacheUsage(usage: { dirtyBytes?: number; updatesBytes?: number }): void;
  /**
   * false: the other members of the replica set are unreachable. Writes still commit here, but the majority
   * commit point stops: majority and snapshot reads do not see them, and `w: 'majority'` waits (bounded by
   * `wtimeout` and `maxTimeMS` only). true: the majority has everything again and the waits end.
   */
  setMajorityReachable(reachable: boolean): void;
  /** The same as `{configureFailPoint: 'failCommand', ...config}` on admin; returns the reply's count. */
  failCommand(config: FailPointConfig): number;
  /**
   * A failover: closes the listening socket and every connection (open transactions and cursors are lost,
   * as with a new primary), then listens again on the same port after `ms`.
   */
  unreachable(ms: number): Promise<void>;
  stopListening(): Promise<void>;
  resumeListening(): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

/** Starts a peer on 127.0.0.1 (a free port), in this process. */
export async function startWirePeer(options: WirePeerOptions = {}): Promise<WirePeer> {
  const storage = new Storage();
  const replication = new Replication(storage);
  const identity: Identity = {
    role: options.role ?? 'primary',
    setName: options.setName ?? 'rs0',
    host: '',
    maxWireVersion: options.maxWireVersion ?? 21,
    helloCommand: options.helloCommand ?? true,
  };
  const settings: PeerSettings = {
    cacheSizeBytes: options.cacheSizeBytes ?? DEFAULT_CACHE_BYTES,
    cacheDirtyBytes: options.cacheDirtyBytes ?? 0,
    cacheUpdatesBytes: options.cacheUpdatesBytes ?? 0,
    engineConfigString: options.wiredTigerEngineConfigString ?? '',
    transactionLifetimeLimitSeconds: options.transactionLifetimeLimitSeconds ?? 60,
    minSnapshotHistoryWindowInSeconds: options.minSnapshotHistoryWindowInSeconds ?? 300,
    transactionTooLargeForCacheThreshold: 0.75,
    wiredTigerEngineRuntimeConfig: '',
    commitVisibilityLagMs: options.commitVisibilityLagMs ?? 0,
    startedAt: Date.now(),
  };
  const cursors = new Cursors();
  const sessions = new Sessions(
    storage,
    replication,
    () => ({
      standalone: identity.role === 'standalone',
      maxWireVersion: identity.maxWireVersion,
      transactionLifetimeMs: settings.transactionLifetimeLimitSeconds * 1000,
      snapshotHistoryWindowSeconds: settings.minSnapshotHistoryWindowInSeconds,
      commitVisibilityLagMs: settings.commitVisibilityLagMs,
    }),
    (transaction) => cursors.close(transaction.cursorIds),
  );
  const log: CommandLogEntry[] = [];
  const state: PeerState = {
    storage,
    replication,
    cursors,
    sessions,
    failCommand: new FailCommand(),
    identity,
    settings,
    openConnections: () => wire.openConnections,
  };
  const wire = new WireServer(new Dispatcher(state, log));
  await wire.listen();
  identity.host = `127.0.0.1:${wire.port}`;

  const stopListening = async () => {
    await wire.stop();
    sessions.abortAll();
    cursors.killAll();
  };
  return {
    host: '127.0.0.1',
    port: wire.port,
    uri(database = '', params = {}) {
      const search = new URLSearchParams(params);
      if (identity.role === 'primary' || identity.role === 'secondary')
        search.set('replicaSet', identity.setName);
      const query = search.toString();
      return `mongodb://${identity.host}/${encodeURIComponent(database)}${query ? `?${query}` : ''}`;
    },
    log,
    clearLog: () => {
      log.length = 0;
    },
    setRole: (role) => {
      identity.role = role;
    },
    setCacheSizeBytes: (bytes) => {
      settings.cacheSizeBytes = bytes;
    },
    setCacheUsage: ({ dirtyBytes, updatesBytes }) => {
      if (dirtyBytes !== undefined) settings.cacheDirtyBytes = dirtyBytes;
      if (updatesBytes !== undefined) settings.cacheUpdatesBytes = updatesBytes;
    },
    setMajorityReachable: (reachable) => replication.setMajorityReachable(reachable),
    failCommand: (config) => state.failCommand.configure({ ...config }),
    stopListening,
    resumeListening: () => wire.listen(),
    async unreachable(ms) {
      await stopListening();
      await delay(ms);
      await wire.listen();
    },
    close: stopListening,
  };
}
