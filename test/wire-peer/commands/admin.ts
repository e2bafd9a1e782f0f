import type { Binary, Document } from 'mongodb';
import { Code, CommandError } from '../errors.js';
import { buildInfoReply, serverVersion } from '../handshake.js';
import { type CommandRun, commandOptions, type Handler } from './context.js';

const ping: Handler = () => ({ ok: 1 });

const buildInfo: Handler = (run) => buildInfoReply(run.peer.identity.maxWireVersion);

const serverStatus: Handler = (run) => {
  const { identity, settings, openConnections } = run.peer;
  const uptimeMillis = Date.now() - settings.startedAt;
  // A mongos has no storage engine: its serverStatus has no wiredTiger section.
  const storage =
    identity.role === 'mongos'
      ? {}
      : {
          storageEngine: { name: 'wiredTiger', supportsCommittedReads: true, persistent: false },
          wiredTiger: {
            cache: {
              'maximum bytes configured': settings.cacheSizeBytes,
              'bytes currently in the cache': settings.cacheDirtyBytes,
              'tracked dirty bytes in the cache': settings.cacheDirtyBytes,
              'bytes allocated for updates': settings.cacheUpdatesBytes,
            },
          },
        };
  return {
    host: identity.host,
    version: serverVersion(identity.maxWireVersion),
    process: identity.role === 'mongos' ? 'mongos' : 'mongod',
    pid: process.pid,
    uptime: Math.floor(uptimeMillis / 1000),
    uptimeMillis,
    localTime: new Date(),
    connections: { current: openConnections(), available: 838_860, totalCreated: openConnections() },
    ...storage,
    ok: 1,
  };
};

/** The server parameters a mongod of this version has (a mongos has none of these). */
function parameters(run: CommandRun): Document {
  const { settings, identity } = run.peer;
  if (identity.role === 'mongos') return {};
  const wire = identity.maxWireVersion;
  return {
    transactionLifetimeLimitSeconds: settings.transactionLifetimeLimitSeconds,
    featureCompatibilityVersion: {
      version: serverVersion(wire).split('.').slice(0, 2).join('.'),
    },
    wiredTigerEngineRuntimeConfig: settings.wiredTigerEngineRuntimeConfig,
    // New in MongoDB 5.0 and 6.2.
    ...(wire >= 13 ? { minSnapshotHistoryWindowInSeconds: settings.minSnapshotHistoryWindowInSeconds } : {}),
    ...(wire >= 19
      ? { transactionTooLargeForCacheThreshold: settings.transactionTooLargeForCacheThreshold }
      : {}),
  };
}

const getParameter: Handler = (run) => {
  const known = parameters(run);
  if (run.command.getParameter === '*') return { ...known, ok: 1 };
  const asked = Object.keys(commandOptions(run));
  const unknown = asked.find((key) => !(key in known));
  if (unknown !== undefined || asked.length === 0) {
    throw new CommandError(Code.InvalidOptions, 'no option found to get');
  }
  return { ...Object.fromEntries(asked.map((key) => [key, known[key]])), ok: 1 };
};

/** The parameters a test may change at run time, as on a server; the reply says what each `was`. */
const SETTABLE = {
  transactionLifetimeLimitSeconds: 'number',
  minSnapshotHistoryWindowInSeconds: 'number',
  transactionTooLargeForCacheThreshold: 'number',
  wiredTigerEngineRuntimeConfig: 'string',
} as const;

const setParameter: Handler = (run) => {
  if (run.db !== 'admin')
    throw new CommandError(13, 'setParameter may only be run against the admin database.');
  const known = parameters(run);
  const given = Object.entries(commandOptions(run));
  if (given.length === 0) throw new CommandError(Code.InvalidOptions, 'no option found to set');
  let was: unknown;
  for (const [name, value] of given) {
    const type = SETTABLE[name as keyof typeof SETTABLE];
    if (!(name in known) || type === undefined) {
      throw new CommandError(Code.InvalidOptions, `attempted to set unrecognized parameter [${name}]`);
    }
    if (typeof value !== type) throw new CommandError(Code.BadValue, `bad value for ${name}`);
    was = known[name];
    (run.peer.settings as unknown as Record<string, unknown>)[name] = value;
  }
  return { was, ok: 1 };
};

/** The startup options; only the WiredTiger engine configuration string is played. */
const getCmdLineOpts: Handler = (run) => {
  const { settings, identity } = run.peer;
  const configString = settings.engineConfigString;
  const storage =
    identity.role !== 'mongos' && configString !== ''
      ? { storage: { wiredTiger: { engineConfig: { configString } } } }
      : {};
  return { argv: [identity.role === 'mongos' ? 'mongos' : 'mongod'], parsed: storage, ok: 1 };
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
  setParameter,
  getCmdLineOpts,
  configureFailPoint,
  endSessions,
  killSessions,
  commitTransaction,
  abortTransaction,
};
