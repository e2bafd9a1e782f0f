import type { Document } from 'mongodb';
import { HELLO_COMMANDS } from './handshake.js';
import { lsidOf } from './transactions.js';

/** One command as the peer received it, with the fields tests ask about pulled out. */
export interface CommandLogEntry {
  db: string;
  name: string;
  collection?: string;
  /** The session id (a UUID) as 32 hex digits. */
  lsid?: string;
  txnNumber?: number;
  startTransaction?: boolean;
  autocommit?: boolean;
  readConcern?: Document;
  writeConcern?: Document;
  maxTimeMS?: number;
  /** A hello/isMaster without a session: the driver's own connection handshake or heartbeat. */
  monitoring: boolean;
  connectionId: number;
  /** The whole command as received (numbers as JS numbers). */
  command: Document;
}

export function logEntry(command: Document, name: string, connectionId: number): CommandLogEntry {
  const target = name === 'getMore' ? command.collection : command[name];
  const lsid = lsidOf(command);
  const entry: CommandLogEntry = {
    db: command.$db,
    name,
    monitoring: HELLO_COMMANDS.has(name) && lsid === undefined,
    connectionId,
    command,
  };
  if (typeof target === 'string') entry.collection = target;
  if (lsid !== undefined) entry.lsid = lsid;
  if (command.txnNumber !== undefined) entry.txnNumber = Number(command.txnNumber);
  for (const field of [
    'startTransaction',
    'autocommit',
    'readConcern',
    'writeConcern',
    'maxTimeMS',
  ] as const) {
    if (command[field] !== undefined) entry[field] = command[field];
  }
  return entry;
}
