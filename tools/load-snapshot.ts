import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { indexReferenceFields, insertBatches } from '../bench/seed.js';
import { DEFAULT_URI, PROJECT_ROOT } from '../src/cli/options.js';
import { errorMessage, MigrationError } from '../src/shared/errors.js';
import { redactText, secretsOf } from '../src/shared/secrets.js';
import { parseMongoUri } from '../src/store/mongo.js';
import { SnapshotReadOnlyStore } from '../src/store/snapshot.js';

const USAGE = `usage: npm run load-snapshot -- [--file <snapshot.json>] [--uri <mongodb-uri>] [--drop]

Loads a snapshot file (default: examples/agmission-demo.json, the demo data) into the database the URI names
(default: $MONGODB_URI, else ${DEFAULT_URI}), through the MongoDB driver, and indexes the reference fields as
production has them. A collection of the file that already holds documents there is refused (nothing is loaded)
unless --drop, which drops it first.`;

/**
 * `npm run load-snapshot`: the demo data (or any snapshot file, or one made by `npm run make-data`) into a real
 * server, to rehearse the guide against MongoDB itself. Exit 0 when loaded, 2 when refused.
 */
async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let values: { file?: string; uri?: string; drop?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        file: { type: 'string' },
        uri: { type: 'string' },
        drop: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    console.error(`load-snapshot: ${errorMessage(error)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const file = resolve(values.file ?? join(PROJECT_ROOT, 'examples', 'agmission-demo.json'));
  const uri = (values.uri ?? env.MONGODB_URI ?? DEFAULT_URI).trim();
  const say = (line: string) => console.log(redactText(line, secretsOf(uri)));
  const complain = (line: string) => console.error(redactText(line, secretsOf(uri)));
  let client: MongoClient | undefined;
  try {
    const { databaseName, description } = parseMongoUri(uri);
    const snapshot = await SnapshotReadOnlyStore.open(file);
    const names = await snapshot.listCollections();
    client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 5_000 });
    const db = client.db(databaseName);
    const occupied: string[] = [];
    for (const name of names) {
      if ((await db.collection(name).estimatedDocumentCount()) > 0) occupied.push(name);
    }
    if (occupied.length > 0 && !values.drop) {
      complain(
        `load-snapshot: ${description} already holds documents in ${occupied.join(', ')}; nothing was loaded. Load into an empty database, or add --drop to drop those collections first`,
      );
      return 2;
    }
    for (const name of occupied) await db.collection(name).drop();
    const counts: string[] = [];
    for (const name of names) {
      await db.createCollection(name).catch(() => {});
      counts.push(`${name}: ${await insertBatches(db, name, snapshot.find(name, {}))}`);
    }
    const indexes = await indexReferenceFields(db);
    say(`Loaded ${file} into ${description}: ${counts.join(', ')}; indexed ${indexes.join(', ')}`);
    return 0;
  } catch (error) {
    complain(`load-snapshot: ${errorMessage(error)}`);
    return error instanceof MigrationError ? error.exitCode : 1;
  } finally {
    await client?.close();
  }
}

process.exitCode = await main(process.argv.slice(2), process.env);
