import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { previewMigration } from '../src/commands/preview.js';
import { rollbackMigration } from '../src/commands/rollback.js';
import { verifyMigration } from '../src/commands/verify.js';
import type { MigrationOptions } from '../src/plan/scan.js';
import { DEFAULT_REFERENCE_MAP } from '../src/plan/schema.js';
import { createOutput } from '../src/shared/output.js';
import { countingReadOnlyStore, countingStore } from '../src/store/counting.js';
import { openReadOnlyStore, openStore } from '../src/store/index.js';
import { MongoReadOnlyStore, MongoStore } from '../src/store/mongo.js';
import { collect, type ReadOnlyStore, type Store, type StoreTarget } from '../src/store/types.js';
import { applyMigration } from '../src/transaction/apply.js';
import type { Access as AccessName, Method } from './backends/index.js';
import { baselineMongo, baselineSnapshot, type Measured } from './baseline.js';
import { decodeFloor } from './floor.js';
import { DESTINATION_USERNAME, SOURCE_USERNAME } from './seed.js';
import { stopwatch } from './stopwatch.js';

/**
 * The child process of one measured run: `node dist/bench/measure.js <snapshot|mongo|dump>
 * <engine|baseline|verify|rollback-preview|preview|floor> <N> <file, URI or folder> [migration id]`. It migrates
 * the seeded source once (or previews that, verifies or previews the rollback of the engine's migration of it, or
 * only decodes the dump) and prints one JSON line (what it measured and its own peak RSS), so the parent's memory
 * and the seeding are never part of the figure.
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

/** A snapshot or a dump, counted at the store interface: one call, one command. */
async function engineCounted(target: StoreTarget): Promise<Measured> {
  const counting = countingStore(await openStore(target));
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
  method: 'verify' | 'rollback-preview' | 'preview',
  opened: { store: ReadOnlyStore; commands: () => number },
  target: StoreTarget,
  migrationId: string | undefined,
): Promise<Measured> {
  // The checks a preview makes of the history file find none here: nothing is written to it.
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
  // What the command checks: the documents the migration moved (verify, rollback), or would move (preview).
  const documents = migrationId ? await journaled(opened.store, migrationId) : undefined;
  const before = opened.commands();
  const watch = stopwatch();
  let code: number;
  if (method === 'preview') {
    code = await previewMigration(
      { action: 'migrate', preview: true, request: REQUEST, options: OPTIONS, force: false, ...place },
      silent,
      context,
    );
  } else if (method === 'verify') {
    code = await verifyMigration(
      { action: 'verify', migrationId, scanAll: false, ...place },
      silent,
      context,
    );
  } else {
    code = await rollbackMigration(
      { action: 'rollback', migrationId: migrationId as string, preview: true, ...place },
      silent,
      context,
    );
  }
  if (code !== 0) throw new Error(`${method} exited ${code}`);
  return {
    modified: documents ?? 0,
    commands: opened.commands() - before,
    seconds: watch.seconds(),
    cpuSeconds: watch.cpuSeconds(),
  };
}

async function journaled(store: ReadOnlyStore, migrationId: string): Promise<number> {
  const head = await collect(store.find(DEFAULT_REFERENCE_MAP.journalCollection, { _id: migrationId }));
  return Number(
    head[0]?.refs?.reduce((sum: number, ref: { documents: number }) => sum + Number(ref.documents), 0) ?? 0,
  );
}

async function openCountedReader(target: StoreTarget): Promise<Opened> {
  // Counted at the store interface, as the engine is.
  const counting = countingReadOnlyStore(await openReadOnlyStore(target, { pointInTime: true }));
  return { store: counting.store, commands: () => counting.counts().total };
}

async function openMongoReader(uri: string): Promise<Opened> {
  let commands = 0;
  const store = await MongoReadOnlyStore.open(uri, {
    pointInTime: true,
    onCommand: () => {
      commands += 1;
    },
  });
  return { store, commands: () => commands };
}

interface Opened {
  store: ReadOnlyStore;
  commands: () => number;
}

/** How each kind of target is measured; a method a kind lacks is not measured on it. */
interface Access {
  target(where: string): StoreTarget;
  engine(where: string): Promise<Measured>;
  openReader(where: string): Promise<Opened>;
  baseline?(where: string): Promise<Measured>;
  floor?(where: string): Promise<Measured>;
}

const ACCESS: Record<AccessName, Access> = {
  snapshot: {
    target: (file) => ({ kind: 'snapshot', file }),
    engine: (file) => engineCounted({ kind: 'snapshot', file }),
    openReader: (file) => openCountedReader({ kind: 'snapshot', file }),
    baseline: (file) => baselineSnapshot(file, REQUEST, DEFAULT_REFERENCE_MAP),
  },
  mongo: {
    target: (uri) => ({ kind: 'mongodb', uri }),
    engine: engineMongo,
    openReader: openMongoReader,
    baseline: (uri) => baselineMongo(uri, REQUEST, DEFAULT_REFERENCE_MAP),
  },
  dump: {
    target: (dir) => ({ kind: 'dump', dir }),
    engine: (dir) => engineCounted({ kind: 'dump', dir }),
    openReader: (dir) => openCountedReader({ kind: 'dump', dir }),
    floor: decodeFloor,
  },
};

function measure(access: Access, method: Method, where: string, migrationId?: string): Promise<Measured> {
  if (method === 'engine') return access.engine(where);
  if (method === 'baseline' || method === 'floor') {
    const run = access[method];
    if (!run) throw new Error(`no ${method} on this back end`);
    return run(where);
  }
  return access.openReader(where).then((opened) => reader(method, opened, access.target(where), migrationId));
}

async function main([access, method, , where, migrationId]: string[]): Promise<number> {
  try {
    const measured = await measure(
      ACCESS[access as AccessName],
      method as Method,
      where as string,
      migrationId,
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
