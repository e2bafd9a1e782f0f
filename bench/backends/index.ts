import { mongoBackend } from './mongo.js';
import { peerBackend } from './peer.js';
import { snapshotBackend } from './snapshot.js';

export type Method = 'engine' | 'baseline';
/** How a child reaches the data: the wire peer is reached through the driver, like MongoDB. */
export type Access = 'snapshot' | 'mongo';

/** Seeded data for the runs of one back end. */
export interface Backing {
  /** Seeds a fresh copy for one run and returns the child's target (a file or a URI) and its clean-up. */
  prepare(n: number, method: Method): Promise<{ target: string; dispose(): Promise<void> }>;
  close(): Promise<void>;
}

/** Where the data is for a bench run: one module per back end, each with its own set-up. */
export interface BenchBackend {
  label: string;
  access: Access;
  /** Above this N the per-document baseline is skipped unless --baseline-max says otherwise. */
  baselineMax: number;
  /** Starts what the runs need; a string says why it cannot. */
  open(options: { download: boolean }): Promise<Backing | string>;
}

export const BACKENDS = {
  snapshot: snapshotBackend,
  mongo: mongoBackend,
  peer: peerBackend,
} satisfies Record<string, BenchBackend>;

export type BackendName = keyof typeof BACKENDS;

export function isBackendName(name: string): name is BackendName {
  return Object.hasOwn(BACKENDS, name);
}
