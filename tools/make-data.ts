import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import {
  createSeed,
  DESTINATION_USERNAME,
  insertSeed,
  SOURCE_USERNAME,
  writeSnapshotSeed,
} from '../bench/seed.js';
import { commandLine } from '../src/report/command-line.js';
import { errorMessage, MigrationError } from '../src/shared/errors.js';
import { redactText, secretsOf } from '../src/shared/secrets.js';
import { parseMongoUri } from '../src/store/mongo.js';
import { describeSnapshot } from '../src/store/snapshot.js';

/** One JSON string holds a snapshot file: above this many jobs, load a server instead (--uri). */
const SNAPSHOT_MAX_JOBS = 400_000;

const USAGE = `usage: npm run make-data -- --jobs <N> (--snapshot <new-file.json> | --uri <mongodb-uri> [--drop])

Makes the bench's data set for a rehearsal at production size: a source customer (${SOURCE_USERNAME}) with
sub-accounts, N jobs and N invoices, a destination (${DESTINATION_USERNAME}) with a client of the same username as
one of the source's (so --merge-conflicts has an account to merge), and an unrelated customer. Into a new
snapshot file (up to ${SNAPSHOT_MAX_JOBS.toLocaleString('en-US')} jobs), or into the empty database a URI names, with
the reference fields indexed (--drop empties users, jobs and invoices there first).`;

/** `npm run make-data`: the bench's seed generator behind a command, for rehearsals. */
async function main(argv: string[]): Promise<number> {
  let values: { jobs?: string; snapshot?: string; uri?: string; drop?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        jobs: { type: 'string' },
        snapshot: { type: 'string' },
        uri: { type: 'string' },
        drop: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    console.error(`make-data: ${errorMessage(error)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const jobs = Number(values.jobs);
  const refuse = (problem: string) => {
    console.error(`make-data: ${problem}\n${USAGE}`);
    return 2;
  };
  if (!Number.isInteger(jobs) || jobs < 1) return refuse('--jobs must be a positive integer');
  if ((values.snapshot === undefined) === (values.uri === undefined)) {
    return refuse('give either --snapshot <file> or --uri <mongodb-uri>');
  }
  const seed = createSeed(jobs);
  const migrate = [
    '--preview',
    '--sources',
    SOURCE_USERNAME,
    '--destination',
    DESTINATION_USERNAME,
    '--merge-conflicts',
  ];
  if (values.snapshot !== undefined) {
    const file = resolve(values.snapshot);
    if (existsSync(file)) return refuse(`${file} exists; give a new file name`);
    if (jobs > SNAPSHOT_MAX_JOBS)
      return refuse(`a snapshot file holds up to ${SNAPSHOT_MAX_JOBS} jobs; use --uri`);
    await writeSnapshotSeed(file, seed);
    console.log(
      `Wrote ${describeSnapshot(file)}: ${seed.users.length} users, ${jobs} + ${seed.expected.noiseJobs} jobs, ${jobs} + ${seed.expected.noiseInvoices} invoices`,
    );
    const history = `${file.replace(/\.json$/, '')}.history.json`;
    console.log(
      `Rehearse: ${commandLine(migrate, { target: { kind: 'snapshot', file }, historyFile: history })}`,
    );
    return 0;
  }
  const uri = (values.uri as string).trim();
  const secrets = secretsOf(uri);
  let client: MongoClient | undefined;
  try {
    const { databaseName, description } = parseMongoUri(uri);
    client = await MongoClient.connect(uri, { serverSelectionTimeoutMS: 5_000 });
    const db = client.db(databaseName);
    for (const name of ['users', 'jobs', 'invoices']) {
      if ((await db.collection(name).estimatedDocumentCount()) === 0) continue;
      if (!values.drop) {
        return refuse(
          redactText(
            `${description} already holds ${name}; nothing was loaded (add --drop to empty users, jobs and invoices first)`,
            secrets,
          ),
        );
      }
      await db.collection(name).drop();
    }
    await insertSeed(db, seed);
    console.log(
      redactText(
        `Loaded ${description}: ${seed.users.length} users, ${jobs} + ${seed.expected.noiseJobs} jobs, ${jobs} + ${seed.expected.noiseInvoices} invoices; reference fields indexed`,
        secrets,
      ),
    );
    console.log(
      `Rehearse: ${commandLine(migrate, { target: { kind: 'mongodb', uri }, historyFile: resolve('migration_history.rehearsal.json') })}`,
    );
    return 0;
  } catch (error) {
    console.error(redactText(`make-data: ${errorMessage(error)}`, secrets));
    return error instanceof MigrationError ? error.exitCode : 1;
  } finally {
    await client?.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
