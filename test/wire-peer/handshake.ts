import { type Document, ObjectId } from 'mongodb';

export type Role = 'primary' | 'secondary' | 'standalone' | 'mongos';

/** Who the peer says it is; hello answers from this, and it may change while the peer runs. */
export interface Identity {
  role: Role;
  setName: string;
  /** host:port exactly as written in the URI: a replica set member whose hosts list lacks it is dropped. */
  host: string;
  maxWireVersion: number;
  /** false plays a server older than 4.4.2 / 4.2.10: `hello` is an unknown command, `isMaster` works. */
  helloCommand: boolean;
}

export const HELLO_COMMANDS = new Set(['hello', 'isMaster', 'ismaster']);

// The one election this replica set ever had.
const ELECTION_ID = new ObjectId('7fffffff0000000000000001');

/**
 * The reply to hello / isMaster. `topologyVersion` is left out on purpose: with it the driver switches to
 * streaming (exhaust) monitoring, which this peer does not speak.
 */
export function helloReply(
  identity: Identity,
  command: Document,
  name: string,
  connectionId: number,
): Document {
  const writable = identity.role !== 'secondary';
  // hello answers isWritablePrimary; the legacy isMaster answers ismaster (the driver maps one to the other).
  const reply: Document = name === 'hello' ? { isWritablePrimary: writable } : { ismaster: writable };
  if (identity.helloCommand && command.helloOk === true) reply.helloOk = true;
  if (identity.role === 'primary' || identity.role === 'secondary') {
    Object.assign(reply, {
      setName: identity.setName,
      setVersion: 1,
      hosts: [identity.host],
      me: identity.host,
      secondary: identity.role === 'secondary',
      ...(identity.role === 'primary' ? { primary: identity.host, electionId: ELECTION_ID } : {}),
    });
  }
  if (identity.role === 'mongos') reply.msg = 'isdbgrid';
  return {
    ...reply,
    maxBsonObjectSize: 16 * 1024 * 1024,
    maxMessageSizeBytes: 48_000_000,
    maxWriteBatchSize: 100_000,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId,
    minWireVersion: 0,
    maxWireVersion: identity.maxWireVersion,
    readOnly: false,
    ok: 1,
  };
}

/** The first release of each wire version this peer can play. */
const RELEASES: [number, string][] = [
  [0, '2.4.0'],
  [2, '2.6.0'],
  [3, '3.0.0'],
  [4, '3.2.0'],
  [5, '3.4.0'],
  [6, '3.6.0'],
  [7, '4.0.0'],
  [8, '4.2.0'],
  [9, '4.4.0'],
  [13, '5.0.0'],
  [17, '6.0.0'],
  [19, '6.2.0'],
  [21, '7.0.0'],
  [25, '8.0.0'],
];

export function serverVersion(maxWireVersion: number): string {
  let version = '2.4.0';
  for (const [wire, release] of RELEASES) if (wire <= maxWireVersion) version = release;
  return version;
}

export function buildInfoReply(maxWireVersion: number): Document {
  const version = serverVersion(maxWireVersion);
  return {
    version,
    gitVersion: 'wire-peer',
    versionArray: [...version.split('.').map(Number), 0],
    bits: 64,
    maxBsonObjectSize: 16 * 1024 * 1024,
    storageEngines: ['wiredTiger'],
    ok: 1,
  };
}
