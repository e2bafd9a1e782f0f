import createDebug from 'debug';
import {
  type ClientSession,
  type CommandFailedEvent,
  type CommandStartedEvent,
  type CommandSucceededEvent,
  type Db,
  MongoClient,
  MongoError,
  MongoServerSelectionError,
} from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import { RuntimeError, UsageError } from '../errors.js';
import { redactUri } from '../secrets.js';
import type { Document, FindOptions, ReadOnlyStore, Store, TransactionStore, UpdateResult } from './types.js';

const logCommands = createDebug('agm:mongo_enhanced');

const DEFAULT_DATABASE = 'agmission';
const SERVER_SELECTION_TIMEOUT_MS = 5000;
/** Bounds the commit alone; the callback is bounded by the server's transactionLifetimeLimitSeconds. */
const MAX_COMMIT_TIME_MS = 30_000;

export interface MongoOptions {
  /** Called once for every command sent to the server (including getMore, commit and retries). */
  onCommand?: (event: CommandStartedEvent) => void;
}

class MongoReads {
  constructor(
    protected readonly db: Db,
    protected readonly session?: ClientSession,
  ) {}

  find(collection: string, filter: Document, options: FindOptions = {}): AsyncIterable<Document> {
    // Numbers stay Int32/Double/Long objects, as on the snapshot back end, so a before-image written to the
    // history keeps each number's BSON type (a double 10.0 read as a JS number would come back as an int).
    return this.db
      .collection(collection)
      .find(filter, { ...options, promoteValues: false, session: this.session });
  }

  count(collection: string, filter: Document): Promise<number> {
    return this.db.collection(collection).countDocuments(filter, { session: this.session });
  }
}

class MongoTransaction extends MongoReads implements TransactionStore {
  async updateMany(collection: string, filter: Document, update: Document): Promise<UpdateResult> {
    const result = await this.db.collection(collection).updateMany(filter, update, { session: this.session });
    return { matched: result.matchedCount, modified: result.modifiedCount };
  }
}

export class MongoReadOnlyStore extends MongoReads implements ReadOnlyStore {
  protected constructor(
    protected readonly client: MongoClient,
    db: Db,
    readonly description: string,
  ) {
    super(db);
  }

  static async open(uri: string, options: MongoOptions = {}): Promise<MongoReadOnlyStore> {
    const { client, db, description } = await connect(uri, options);
    return new MongoReadOnlyStore(client, db, description);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

export class MongoStore extends MongoReadOnlyStore implements Store {
  static override async open(uri: string, options: MongoOptions = {}): Promise<MongoStore> {
    const { client, db, description } = await connect(uri, options);
    return new MongoStore(client, db, description);
  }

  /** The driver does not check this before a transaction; the server would fail its first operation. */
  async assertTransactional(): Promise<void> {
    const hello = await this.db.admin().command({ hello: 1 });
    if (hello.msg === 'isdbgrid') return;
    if (typeof hello.setName === 'string') {
      if (hello.isWritablePrimary) return;
      throw new RuntimeError(
        `${this.description} is not the primary of replica set ${hello.setName}; connect with the replica set URI so writes go to the primary`,
      );
    }
    throw new RuntimeError(
      `${this.description} is a standalone server and cannot run transactions; use a replica set or mongos (a one-member replica set will do)`,
    );
  }

  async transaction<T>(work: (tx: TransactionStore) => Promise<T>): Promise<T> {
    const session = this.client.startSession();
    try {
      return await session.withTransaction(() => work(new MongoTransaction(this.db, session)), {
        readConcern: { level: 'snapshot' },
        writeConcern: { w: 'majority' },
        readPreference: 'primary',
        maxCommitTimeMS: MAX_COMMIT_TIME_MS,
      });
    } catch (error) {
      throw explainMongoError(error, this.description);
    } finally {
      await session.endSession();
    }
  }
}

/** Where a URI points, as it may be shown: hosts and database, never credentials. */
export function parseMongoUri(uri: string) {
  let parsed: ConnectionString;
  try {
    parsed = new ConnectionString(uri);
  } catch (error) {
    throw new UsageError(`Invalid MongoDB URI ${redactUri(uri)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const databaseName = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || DEFAULT_DATABASE;
  return { parsed, databaseName, description: `MongoDB ${parsed.hosts.join(',')}/${databaseName}` };
}

async function connect(uri: string, options: MongoOptions) {
  const { parsed, databaseName, description } = parseMongoUri(uri);
  const timeoutInUri = [...parsed.searchParams.keys()].some(
    (key) => key.toLowerCase() === 'serverselectiontimeoutms',
  );
  const monitor = logCommands.enabled || options.onCommand !== undefined;
  const client = new MongoClient(uri, {
    appName: 'agm-migrate-customer-data',
    monitorCommands: monitor,
    ...(timeoutInUri ? {} : { serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS }),
  });
  if (monitor) watchCommands(client, options.onCommand);
  try {
    await client.connect();
  } catch (error) {
    await client.close().catch(() => {});
    throw explainMongoError(error, description);
  }
  return { client, db: client.db(databaseName), description };
}

function watchCommands(client: MongoClient, onCommand: MongoOptions['onCommand']) {
  client.on('commandStarted', (event: CommandStartedEvent) => {
    onCommand?.(event);
    const target = event.command[event.commandName];
    logCommands(
      '-> %s %s%s (request %d)',
      event.commandName,
      event.databaseName,
      typeof target === 'string' ? `.${target}` : '',
      event.requestId,
    );
  });
  client.on('commandSucceeded', (event: CommandSucceededEvent) =>
    logCommands('<- %s ok in %d ms (request %d)', event.commandName, event.duration, event.requestId),
  );
  client.on('commandFailed', (event: CommandFailedEvent) =>
    logCommands(
      '<- %s FAILED in %d ms (request %d): %s',
      event.commandName,
      event.duration,
      event.requestId,
      event.failure.message,
    ),
  );
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

const LIFETIME_CODES = new Set([290, 251, 50]);

/** Say what happened in the user's terms instead of showing the server's error. */
export function explainMongoError(error: unknown, description: string): unknown {
  if (!(error instanceof MongoError)) return error;
  if (error instanceof MongoServerSelectionError) {
    return new RuntimeError(
      `Cannot reach ${description} (${firstLine(error.message)}); check --uri or MONGODB_URI and that the server is running`,
      { cause: error },
    );
  }
  const code = typeof error.code === 'number' ? error.code : undefined;
  if (code === 20) {
    return new RuntimeError(`${description} cannot run transactions; use a replica set or mongos`, {
      cause: error,
    });
  }
  if (code !== undefined && LIFETIME_CODES.has(code)) {
    return new RuntimeError(
      `The transaction exceeded MongoDB's time limit (transactionLifetimeLimitSeconds, 60 s by default) and was rolled back; migrate fewer source customers at a time`,
      { cause: error },
    );
  }
  if (code === 388) {
    return new RuntimeError(
      `The transaction was too large for the server's cache and was rolled back; migrate fewer source customers at a time`,
      { cause: error },
    );
  }
  if (code === 18 || code === 13) {
    return new RuntimeError(
      `${description} refused the credentials or the operation (${error.message}); check the URI's user and its roles`,
      {
        cause: error,
      },
    );
  }
  return new RuntimeError(`MongoDB error on ${description}: ${error.message}`, { cause: error });
}
