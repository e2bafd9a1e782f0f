import { setTimeout as delay } from 'node:timers/promises';
import type { PeerSettings, PeerState } from './commands/context.js';
import { Cursors } from './cursors.js';
import { Dispatcher } from './dispatch.js';
import { FailCommand, type FailPointConfig } from './fail-points.js';
import type { Identity, Role } from './handshake.js';
import type { CommandLogEntry } from './log.js';
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
  const identity: Identity = {
    role: options.role ?? 'primary',
    setName: options.setName ?? 'rs0',
    host: '',
    maxWireVersion: options.maxWireVersion ?? 21,
    helloCommand: options.helloCommand ?? true,
  };
  const settings: PeerSettings = {
    cacheSizeBytes: options.cacheSizeBytes ?? DEFAULT_CACHE_BYTES,
    transactionLifetimeLimitSeconds: options.transactionLifetimeLimitSeconds ?? 60,
    commitVisibilityLagMs: options.commitVisibilityLagMs ?? 0,
    startedAt: Date.now(),
  };
  const cursors = new Cursors();
  const sessions = new Sessions(
    storage,
    () => ({
      standalone: identity.role === 'standalone',
      maxWireVersion: identity.maxWireVersion,
      transactionLifetimeMs: settings.transactionLifetimeLimitSeconds * 1000,
      commitVisibilityLagMs: settings.commitVisibilityLagMs,
    }),
    (transaction) => cursors.close(transaction.cursorIds),
  );
  const log: CommandLogEntry[] = [];
  const state: PeerState = {
    storage,
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
