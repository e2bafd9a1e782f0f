import type { Binary, Document } from 'mongodb';
import { Code, CommandError } from '../errors.js';
import { buildInfoReply, serverVersion } from '../handshake.js';
import { commandOptions, type Handler } from './context.js';

const ping: Handler = () => ({ ok: 1 });

const buildInfo: Handler = (run) => buildInfoReply(run.peer.identity.maxWireVersion);

const serverStatus: Handler = (run) => {
  const { identity, settings, openConnections } = run.peer;
  const uptimeMillis = Date.now() - settings.startedAt;
  return {
    host: identity.host,
    version: serverVersion(identity.maxWireVersion),
    process: identity.role === 'mongos' ? 'mongos' : 'mongod',
    pid: process.pid,
    uptime: Math.floor(uptimeMillis / 1000),
    uptimeMillis,
    localTime: new Date(),
    connections: { current: openConnections(), available: 838_860, totalCreated: openConnections() },
    storageEngine: { name: 'wiredTiger', supportsCommittedReads: true, persistent: false },
    wiredTiger: {
      cache: { 'maximum bytes configured': settings.cacheSizeBytes, 'bytes currently in the cache': 0 },
    },
    ok: 1,
  };
};

const getParameter: Handler = (run) => {
  const { settings, identity } = run.peer;
  const parameters: Document = {
    transactionLifetimeLimitSeconds: settings.transactionLifetimeLimitSeconds,
    featureCompatibilityVersion: {
      version: serverVersion(identity.maxWireVersion).split('.').slice(0, 2).join('.'),
    },
  };
  if (run.command.getParameter === '*') return { ...parameters, ok: 1 };
  const asked = Object.keys(commandOptions(run));
  const unknown = asked.find((key) => !(key in parameters));
  if (unknown !== undefined || asked.length === 0) {
    throw new CommandError(Code.InvalidOptions, 'no option found to get');
  }
  return { ...Object.fromEntries(asked.map((key) => [key, parameters[key]])), ok: 1 };
};

const configureFailPoint: Handler = (run) => {
  if (run.db !== 'admin')
    throw new CommandError(13, 'configureFailPoint may only be run against the admin database.');
  if (run.command.configureFailPoint !== 'failCommand') {
    throw new CommandError(
      Code.BadValue,
      `the wire peer has no fail point named ${run.command.configureFailPoint}`,
    );
  }
  return { count: run.peer.failCommand.configure(run.command), ok: 1 };
};

function lsids(value: unknown): string[] {
  return ((value ?? []) as { id: Binary }[]).map((lsid) => lsid.id.toString('hex'));
}

const endSessions: Handler = (run) => {
  run.peer.sessions.forget(lsids(run.command.endSessions));
  return { ok: 1 };
};

const killSessions: Handler = (run) => {
  const ids = lsids(run.command.killSessions);
  // An empty list kills every session.
  run.peer.sessions.forget(ids.length === 0 ? 'all' : ids);
  return { ok: 1 };
};

const commitTransaction: Handler = (run) => {
  const transaction = run.session.transaction;
  if (!transaction)
    throw new CommandError(Code.InvalidOptions, 'commitTransaction must be run within a transaction');
  // A commit retried after it succeeded is answered ok again: commit is retryable.
  if (transaction.state === 'open') run.peer.sessions.end(transaction, 'committed');
  return { ok: 1 };
};

const abortTransaction: Handler = (run) => {
  const transaction = run.session.transaction;
  if (!transaction)
    throw new CommandError(Code.InvalidOptions, 'abortTransaction must be run within a transaction');
  run.peer.sessions.end(transaction, 'aborted');
  return { ok: 1 };
};

export const adminCommands: Record<string, Handler> = {
  ping,
  buildInfo,
  buildinfo: buildInfo,
  serverStatus,
  getParameter,
  configureFailPoint,
  endSessions,
  killSessions,
  commitTransaction,
  abortTransaction,
};
