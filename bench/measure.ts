import { randomUUID } from 'node:crypto';
import type { MigrationOptions } from '../src/plan/scan.js';
import { DEFAULT_REFERENCE_MAP } from '../src/plan/schema.js';
import { countingStore } from '../src/store/counting.js';
import { MongoStore } from '../src/store/mongo.js';
import { SnapshotStore } from '../src/store/snapshot.js';
import type { Store } from '../src/store/types.js';
import { applyMigration } from '../src/transaction/apply.js';
import type { Access, Method } from './backends/index.js';
import { baselineMongo, baselineSnapshot, type Measured } from './baseline.js';
import { DESTINATION_USERNAME, SOURCE_USERNAME } from './seed.js';

/**
 * The child process of one measured run: `node dist/bench/measure.js <snapshot|mongo> <engine|baseline> <N>
 * <file or URI>`. It migrates the seeded source once and prints one JSON line (what it measured and its own
 * peak RSS), so the parent's memory and the seeding are never part of the figure.
 */

const OPTIONS: MigrationOptions = { mergeConflicts: true, convertToAdmin: false, skipInvoices: false };
const REQUEST = { sources: [SOURCE_USERNAME], destination: DESTINATION_USERNAME };

/** The engine on a store whose commands are counted by `commands()`. */
async function engine(store: Store, commands: () => number): Promise<Measured> {
  try {
    const before = commands();
    const started = performance.now();
    const applied = await applyMigration(store, {
      ...REQUEST,
      options: OPTIONS,
      map: DEFAULT_REFERENCE_MAP,
      run: { id: randomUUID(), now: new Date() },
    });
    const seconds = (performance.now() - started) / 1000;
    return {
      modified: applied.results.reduce((sum, result) => sum + result.modified, 0),
      commands: commands() - before,
      seconds,
      chunks: applied.journal.chunks,
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

const MEASURE: Record<Access, Record<Method, (target: string) => Promise<Measured>>> = {
  snapshot: {
    engine: engineSnapshot,
    baseline: (file) => baselineSnapshot(file, REQUEST, DEFAULT_REFERENCE_MAP),
  },
  mongo: {
    engine: engineMongo,
    baseline: (uri) => baselineMongo(uri, REQUEST, DEFAULT_REFERENCE_MAP),
  },
};

async function main([access, method, , target]: string[]): Promise<number> {
  try {
    const measured = await MEASURE[access as Access][method as Method](target as string);
    const peakRssMiB = process.resourceUsage().maxRSS / 1024;
    process.stdout.write(`${JSON.stringify({ ...measured, peakRssMiB })}\n`);
    return 0;
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ error: (error as Error).message })}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
