import { ConnectionString } from 'mongodb-connection-string-url';

export const NO_MONGO_SERVER =
  'no MongoDB server: set MONGODB_TEST_URI=<replica set uri> or MONGOMS_SYSTEM_BINARY=/path/to/mongod to run it';

export type MongoServer = { uri: string; stop(): Promise<void> };

/** Fail points (configureFailPoint) need test commands on, as the wire peer has them. */
const TEST_COMMANDS = ['--setParameter', 'enableTestCommands=1'];

/**
 * Why the real-server tier cannot run. With REQUIRE_MONGO=1 (a CI that has a server) that is a failure, not
 * a skip: the error fails the test file that wanted the server.
 */
function unavailable(reason: string): { skip: string } {
  if (process.env.REQUIRE_MONGO === '1') {
    throw new Error(`REQUIRE_MONGO=1 but the real-server tests cannot run: ${reason}`);
  }
  return { skip: reason };
}

/** The local mongod binary mongodb-memory-server would use (never downloaded by `npm test`). */
async function memoryServer() {
  process.env.MONGOMS_RUNTIME_DOWNLOAD ??= 'false';
  const library = await import('mongodb-memory-server-core');
  // Looking for the binary first: when there is none, create() would also print a stack trace.
  await library.MongoBinary.getPath();
  return library;
}

/**
 * A MongoDB replica set to test against, or the reason there is none (pass it to node:test's `skip`).
 * MONGODB_TEST_URI wins when set (stop() then leaves that server alone); otherwise a one-member in-memory
 * replica set is started, which needs a local mongod: MONGOMS_SYSTEM_BINARY or the library's download
 * cache. Downloading one is off unless MONGOMS_RUNTIME_DOWNLOAD is already set.
 */
export async function startMongo(): Promise<MongoServer | { skip: string }> {
  const given = process.env.MONGODB_TEST_URI;
  if (given) return { uri: given, stop: async () => {} };
  try {
    const { MongoMemoryReplSet } = await memoryServer();
    const replSet = await MongoMemoryReplSet.create({
      replSet: { count: 1, storageEngine: 'wiredTiger' },
      instanceOpts: [{ args: TEST_COMMANDS }],
    });
    return {
      uri: replSet.getUri(),
      stop: async () => {
        await replSet.stop();
      },
    };
  } catch (error) {
    return unavailable(`${NO_MONGO_SERVER} (${firstLine(error)})`);
  }
}

/** A standalone mongod (no replica set), which a local binary is needed for; or the reason there is none. */
export async function startMongoStandalone(): Promise<MongoServer | { skip: string }> {
  try {
    const { MongoMemoryServer } = await memoryServer();
    const server = await MongoMemoryServer.create({ instance: { args: TEST_COMMANDS } });
    return {
      uri: server.getUri(),
      stop: async () => {
        await server.stop();
      },
    };
  } catch (error) {
    return unavailable(
      `no mongod binary for a standalone server: set MONGOMS_SYSTEM_BINARY=/path/to/mongod to run it (${firstLine(error)})`,
    );
  }
}

/**
 * The same server, with `name` as the URI's database (the one MongoStore and `client.db()` use). Credentials
 * keep authenticating where they did: against the URI's old database (admin when none) unless authSource
 * says.
 */
export function withDatabase(uri: string, name: string): string {
  const parsed = new ConnectionString(uri);
  const hasAuthSource = [...parsed.searchParams.keys()].some((key) => key.toLowerCase() === 'authsource');
  // mongodb+srv: the DNS TXT record usually names authSource (Atlas: admin), and it outranks the path.
  if (parsed.username && !hasAuthSource && !parsed.isSRV) {
    parsed.searchParams.set('authSource', decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'admin');
  }
  parsed.pathname = `/${encodeURIComponent(name)}`;
  return parsed.toString();
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n', 1)[0]?.trim() ?? '';
}

/**
 * The same server, with `appName` in the URI (none: taken out). The tool keeps a URI's appName, so a fail point
 * scoped to it (`data.appName`, as the drivers' own spec tests scope theirs) hits the tool under test and
 * nothing else on a shared server.
 */
export function withAppName(uri: string, appName: string | undefined): string {
  const parsed = new ConnectionString(uri);
  for (const key of [...parsed.searchParams.keys()]) {
    if (key.toLowerCase() === 'appname') parsed.searchParams.delete(key);
  }
  if (appName !== undefined) parsed.searchParams.set('appName', appName);
  return parsed.toString();
}
