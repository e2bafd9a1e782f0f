import { setTimeout as delay } from 'node:timers/promises';
import { Binary, type Document, Long } from 'mongodb';
import { adminCommands } from './commands/admin.js';
import { catalogCommands } from './commands/catalog.js';
import type { Handler, PeerState } from './commands/context.js';
import { readCommands } from './commands/reads.js';
import { writeCommands } from './commands/writes.js';
import { Code, CommandError, errorReply, type LabelContext, serverLabels } from './errors.js';
import { OP_QUERY, type Request } from './framing.js';
import { HELLO_COMMANDS, helloReply } from './handshake.js';
import { type CommandLogEntry, logEntry } from './log.js';
import type { SessionContext } from './transactions.js';

const HANDLERS: Record<string, Handler> = {
  ...adminCommands,
  ...catalogCommands,
  ...readCommands,
  ...writeCommands,
};

/**
 * Commands that write: a secondary refuses them (NotWritablePrimary), and outside a transaction a server
 * waits for their write concern afterwards, where a fail point's writeConcernError lands.
 */
const WRITE_COMMANDS = new Set([
  'insert',
  'update',
  'delete',
  'create',
  'drop',
  'dropDatabase',
  'createIndexes',
  'dropIndexes',
  'commitTransaction',
  'abortTransaction',
]);
/** MongoDB 5.0: the implicit default write concern of a replica set becomes `w: 'majority'`. */
const MAJORITY_DEFAULT_WIRE_VERSION = 13;
/** Refused by a secondary unless the read preference allows secondaries. */
const READS = new Set(['find', 'aggregate', 'count', 'distinct', 'listCollections', 'listIndexes']);

/** The connection a command came in on. */
export interface ConnectionInfo {
  readonly id: number;
  /** client.application.name from the connection's handshake. */
  appName?: string;
}

/** What to do with a request: send this reply, or close the connection without one. */
export type Outcome = { reply: Document } | { close: true };

/** A signature the driver accepts and echoes; nothing checks it. */
const CLUSTER_TIME_SIGNATURE = { hash: new Binary(Buffer.alloc(20)), keyId: Long.ZERO };

/**
 * One command, the way mongod runs it: fail point first (block, close, error), then the role and session
 * checks, then the command, then a fail point's write concern error; error labels as the server would add
 * them unless the fail point says otherwise.
 */
export class Dispatcher {
  constructor(
    private readonly peer: PeerState,
    private readonly log: CommandLogEntry[],
  ) {}

  async handle(request: Request, connection: ConnectionInfo): Promise<Outcome> {
    const started = Date.now();
    const command = request.command;
    const name = Object.keys(command)[0] ?? '';
    this.log.push(logEntry(command, name, connection.id));
    if (HELLO_COMMANDS.has(name) && connection.appName === undefined) {
      connection.appName = (
        command.client as { application?: { name?: string } } | undefined
      )?.application?.name;
    }
    const labels: LabelContext = {
      inTransaction: command.autocommit === false && command.txnNumber !== undefined,
      retryableWrite: command.txnNumber !== undefined && command.autocommit === undefined,
      commandName: name,
    };

    const client = { appName: connection.appName, namespace: namespaceOf(command, name) };
    const failure = this.peer.failCommand.before(name, client);
    if (failure?.blockMs) await delay(failure.blockMs);
    if (failure?.closeConnection) return { close: true };
    if (failure?.errorCode !== undefined) {
      const error = new CommandError(failure.errorCode, "Failing command via 'failCommand' failpoint");
      return {
        reply: this.finish(
          withLabels(errorReply(error), failure.errorLabels ?? serverLabels(labels, failure.errorCode)),
        ),
      };
    }

    let session: SessionContext | undefined;
    try {
      if (request.opcode === OP_QUERY && !HELLO_COMMANDS.has(name)) {
        throw new CommandError(Code.UnsupportedOpQueryCommand, `Unsupported OP_QUERY command: ${name}`);
      }
      const handler = this.handler(name, connection);
      session = this.peer.sessions.resolve(name, command);
      this.checkRole(name, command);
      if (session.waitsFor !== undefined) await this.peer.storage.applied(session.waitsFor);
      // A retried write that already ran is answered from the session's history, and still waits for its
      // write concern (and meets a fail point's writeConcernError) as mongod's retry does.
      let reply = session.retryableWrite?.previous;
      if (!reply) {
        reply = await handler({
          peer: this.peer,
          db: command.$db,
          name,
          command,
          typed: request.typed,
          session,
        });
        session.retryableWrite?.remember(reply);
      }
      return {
        reply: this.finish(await this.afterWrite(reply, name, command, labels, connection, session, started)),
      };
    } catch (error) {
      // An error in a command of a transaction aborts it, as on mongod (the fail point's do not: they fire
      // before the transaction is touched).
      const transaction = session?.transaction;
      if (transaction?.state === 'open') this.peer.sessions.end(transaction, 'aborted');
      const reply = errorReply(error);
      return { reply: this.finish(withLabels(reply, serverLabels(labels, reply.code))) };
    }
  }

  private handler(name: string, connection: ConnectionInfo): Handler {
    const { identity } = this.peer;
    if (HELLO_COMMANDS.has(name) && (name !== 'hello' || identity.helloCommand)) {
      return (run) => helloReply(identity, run.command, name, connection.id);
    }
    const handler = HANDLERS[name];
    if (!handler) throw new CommandError(Code.CommandNotFound, `no such command: '${name}'`);
    return handler;
  }

  /** A secondary refuses writes, and reads unless the read preference allows a secondary. */
  private checkRole(name: string, command: Document): void {
    if (this.peer.identity.role !== 'secondary') return;
    if (WRITE_COMMANDS.has(name)) throw new CommandError(Code.NotWritablePrimary, 'not primary');
    const mode = (command.$readPreference as { mode?: string } | undefined)?.mode ?? 'primary';
    if (READS.has(name) && mode === 'primary') {
      throw new CommandError(Code.NotPrimaryNoSecondaryOk, 'not primary and secondaryOk=false');
    }
  }

  /**
   * After a command that took effect and waits for its write concern: a fail point's writeConcernError (which
   * replaces the wait, as in mongod), or the wait for a majority, bounded by `wtimeout` and `maxTimeMS`.
   */
  private async afterWrite(
    reply: Document,
    name: string,
    command: Document,
    labels: LabelContext,
    connection: ConnectionInfo,
    session: SessionContext,
    started: number,
  ): Promise<Document> {
    // Inside a transaction only commit and abort wait for write concern.
    const commitOrAbort = name === 'commitTransaction' || name === 'abortTransaction';
    const waits = WRITE_COMMANDS.has(name) && (!session.transaction || commitOrAbort);
    if (!waits || reply.ok !== 1) return reply;
    const after = this.peer.failCommand.after(name, {
      appName: connection.appName,
      namespace: namespaceOf(command, name),
    });
    const writeConcernError = after
      ? after.writeConcernError
      : await this.waitForWriteConcern(command, started);
    if (!writeConcernError) return reply;
    return withLabels(
      { ...reply, writeConcernError },
      after?.errorLabels ?? serverLabels(labels, undefined, writeConcernError.code as number),
    );
  }

  /**
   * `w: 'majority'` (the implicit default from MongoDB 5.0) waits until a majority has the write; `w: 1` and a
   * standalone do not wait.
   */
  private async waitForWriteConcern(command: Document, started: number): Promise<Document | undefined> {
    const { identity, replication } = this.peer;
    if (identity.role === 'standalone') return undefined;
    const implicit: Document = {
      w: identity.maxWireVersion >= MAJORITY_DEFAULT_WIRE_VERSION ? 'majority' : 1,
    };
    const writeConcern = (command.writeConcern as Document | undefined) ?? implicit;
    if (writeConcern.w !== 'majority') return undefined;
    const maxTimeMS = typeof command.maxTimeMS === 'number' ? command.maxTimeMS : 0;
    const wtimeout = typeof writeConcern.wtimeout === 'number' ? writeConcern.wtimeout : 0;
    return replication.waitForMajority({
      writeConcern,
      // 0 means no limit, for both.
      ...(wtimeout > 0 ? { wtimeoutMs: wtimeout } : {}),
      ...(maxTimeMS > 0 ? { maxTimeMs: Math.max(0, started + maxTimeMS - Date.now()) } : {}),
    });
  }

  /** A replica set member or mongos gossips its cluster time on every reply. */
  private finish(reply: Document): Document {
    if (this.peer.identity.role === 'standalone') return reply;
    const clusterTime = this.peer.storage.timestamp();
    return {
      ...reply,
      $clusterTime: { clusterTime, signature: CLUSTER_TIME_SIGNATURE },
      operationTime: clusterTime,
    };
  }
}

/** The namespace a command runs on, as the fail point's `namespace` names it. */
function namespaceOf(command: Document, name: string): string {
  const target = name === 'getMore' ? command.collection : command[name];
  return typeof target === 'string' ? `${command.$db}.${target}` : String(command.$db);
}

function withLabels(reply: Document, labels: string[]): Document {
  return labels.length > 0 ? { ...reply, errorLabels: labels } : reply;
}
