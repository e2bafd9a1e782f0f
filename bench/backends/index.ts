import { dumpBackend } from './dump.js';
import { mongoBackend } from './mongo.js';
import { peerBackend } from './peer.js';
import { snapshotBackend } from './snapshot.js';

/**
 * A migration (by the engine, or per document), a read-only command on what the engine migrated, the preview
 * before it, or the floor: plain decoding of every document (dump only).
 */
export type Method = 'engine' | 'baseline' | 'verify' | 'rollback-preview' | 'preview' | 'floor';
/** How a child reaches the data: the wire peer is reached through the driver, like MongoDB. */
export type Access = 'snapshot' | 'mongo' | 'dump';

/** Seeded data for the runs of one back end. */
export interface Backing {
  /** Seeds a fresh copy for one run and returns the child's target (a file or a URI) and its clean-up. */
  prepare(n: number, copy: string): Promise<{ target: string; dispose(): Promise<void> }>;
  close(): Promise<void>;
}

/** Where the data is for a bench run: one module per back end, each with its own set-up. */
export interface BenchBackend {
  label: string;
  access: Access;
  /** Above this N the per-document baseline is skipped unless --baseline-max says otherwise. */
  baselineMax: number;
  /**
   * The runs at each N, each list on one freshly seeded copy in this order (reads before the migration that
   * changes the copy): a per-document baseline must not meet the engine's result.
   */
  copies: Method[][];
  /** Starts what the runs need; a string says why it cannot. */
  open(options: { download: boolean }): Promise<Backing | string>;
}

export const BACKENDS = {
  snapshot: snapshotBackend,
  mongo: mongoBackend,
  peer: peerBackend,
  dump: dumpBackend,
} satisfies Record<string, BenchBackend>;

export type BackendName = keyof typeof BACKENDS;

export function isBackendName(name: string): name is BackendName {
  return Object.hasOwn(BACKENDS, name);
}
