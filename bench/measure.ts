import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rollbackMigration } from '../src/commands/rollback.js';
import { verifyMigration } from '../src/commands/verify.js';
import type { MigrationOptions } from '../src/plan/scan.js';
import { DEFAULT_REFERENCE_MAP } from '../src/plan/schema.js';
import { createOutput } from '../src/shared/output.js';
import { countingReadOnlyStore, countingStore } from '../src/store/counting.js';
import { MongoReadOnlyStore, MongoStore } from '../src/store/mongo.js';
import { SnapshotReadOnlyStore, SnapshotStore } from '../src/store/snapshot.js';
import { collect, type ReadOnlyStore, type Store, type StoreTarget } from '../src/store/types.js';
import { applyMigration } from '../src/transaction/apply.js';
import type { Access, Method } from './backends/index.js';
import { baselineMongo, baselineSnapshot, type Measured } from './baseline.js';
import { DESTINATION_USERNAME, SOURCE_USERNAME } from './seed.js';
import { stopwatch } from './stopwatch.js';

/**
 * The child process of one measured run: `node dist/bench/measure.js <snapshot|mongo>
 * <engine|baseline|verify|rollback-preview> <N> <file or URI> [migration id]`. It migrates the seeded source once
 * (or verifies, or previews the rollback of, the engine's migration of it) and prints one JSON line (what it
 * measured and its own peak RSS), so the parent's memory and the seeding are never part of the figure.
 */

const OPTIONS: MigrationOptions = { mergeConflicts: true, convertToAdmin: false, skipInvoices: false };
const REQUEST = { sources: [SOURCE_USERNAME], destination: DESTINATION_USERNAME };

/** The engine on a store whose commands are counted by `commands()`. */
async function engine(store: Store, commands: () => number): Promise<Measured> {
  try {
    const before = commands();
    const watch = stopwatch();
    const runId = randomUUID();
    const applied = await applyMigration(store, {
      ...REQUEST,
      options: OPTIONS,
      map: DEFAULT_REFERENCE_MAP,
      run: { id: runId, now: new Date() },
    });
    return {
      modified: applied.results.reduce((sum, result) => sum + result.modified, 0),
      commands: commands() - before,
      seconds: watch.seconds(),
      cpuSeconds: watch.cpuSeconds(),
      chunks: applied.journal.chunks,
      migrationId: runId,
    };
  } finally {
    await store.close();
  }
}

async function engineSnapshot(file: string): Promise<Measured> {
  // Counted at the store interface: one call, one command.
  const counting = countingStore(await SnapshotStore.open(file));
  return engine(counting.store, () => counting.counts().total);
}

async function engineMongo(uri: string): Promise<Measured> {
  // Counted from the driver's commandStarted events.
  let commands = 0;
  const store = await MongoStore.open(uri, {
    onCommand: () => {
      commands += 1;
    },
  });
  return engine(store, () => commands);
}

/** The tool's own read-only command, timed on a store opened beforehand; its report goes nowhere. */
async function reader(
  method: 'verify' | 'rollback-preview',
  opened: { store: ReadOnlyStore; commands: () => number },
  target: StoreTarget,
  migrationId: string,
): Promise<Measured> {
  const head = await collect(
    opened.store.find(DEFAULT_REFERENCE_MAP.journalCollection, { _id: migrationId }),
  );
  const documents = Number(
    head[0]?.refs?.reduce((sum: number, ref: { documents: number }) => sum + Number(ref.documents), 0) ?? 0,
  );
  // The checks a rollback preview makes of the history file find none here: nothing is written to it.
  const place = { target, historyFile: join(tmpdir(), `agm-bench-${process.pid}.history.json`), json: false };
  const context = {
    openReadOnlyStore: async () => opened.store,
    openStore: () => Promise.reject(new Error('the bench measures reads only')),
    interruption: {
      signal: new AbortController().signal,
      stopIfInterrupted() {},
      onForce() {},
      dispose() {},
    },
  };
  const silent = createOutput({ stdout: () => {}, stderr: () => {} }, false, []);
  const before = opened.commands();
  const watch = stopwatch();
  const code =
    method === 'verify'
      ? await verifyMigration({ action: 'verify', migrationId, scanAll: false, ...place }, silent, context)
      : await rollbackMigration(
          { action: 'rollback', migrationId, preview: true, ...place },
          silent,
          context,
        );
  if (code !== 0) throw new Error(`${method} exited ${code}`);
  return {
    modified: documents,
    commands: opened.commands() - before,
    seconds: watch.seconds(),
    cpuSeconds: watch.cpuSeconds(),
  };
}

async function openSnapshotReader(file: string) {
  // Counted at the store interface, as the engine is.
  const counting = countingReadOnlyStore(await SnapshotReadOnlyStore.open(file));
  return { store: counting.store, commands: () => counting.counts().total };
}

async function openMongoReader(uri: string) {
  let commands = 0;
  const store = await MongoReadOnlyStore.open(uri, {
    pointInTime: true,
    onCommand: () => {
      commands += 1;
    },
  });
  return { store, commands: () => commands };
}

const MEASURE: Record<Access, Record<Method, (target: string, migrationId: string) => Promise<Measured>>> = {
  snapshot: {
    engine: engineSnapshot,
    baseline: (file) => baselineSnapshot(file, REQUEST, DEFAULT_REFERENCE_MAP),
    verify: async (file, id) =>
      reader('verify', await openSnapshotReader(file), { kind: 'snapshot', file }, id),
    'rollback-preview': async (file, id) =>
      reader('rollback-preview', await openSnapshotReader(file), { kind: 'snapshot', file }, id),
  },
  mongo: {
    engine: engineMongo,
    baseline: (uri) => baselineMongo(uri, REQUEST, DEFAULT_REFERENCE_MAP),
    verify: async (uri, id) => reader('verify', await openMongoReader(uri), { kind: 'mongodb', uri }, id),
    'rollback-preview': async (uri, id) =>
      reader('rollback-preview', await openMongoReader(uri), { kind: 'mongodb', uri }, id),
  },
};

async function main([access, method, , target, migrationId]: string[]): Promise<number> {
  try {
    const measured = await MEASURE[access as Access][method as Method](
      target as string,
      migrationId as string,
    );
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(`${JSON.stringify({ ...measured, peakRssMiB })}\n`);
    return 0;
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ error: (error as Error).message })}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
