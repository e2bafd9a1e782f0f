import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import type { MigrationOptions } from '../src/plan/scan.js';
import { DEFAULT_REFERENCE_MAP } from '../src/plan/schema.js';
import { countingStore } from '../src/store/counting.js';
import { MongoStore } from '../src/store/mongo.js';
import { SnapshotStore } from '../src/store/snapshot.js';
import { applyMigration } from '../src/transaction/apply.js';
import { type MongoServer, startMongo, withDatabase } from '../test/helpers/mongo-server.js';
import { startWirePeer } from '../test/wire-peer/index.js';
import { baselineMongo, baselineSnapshot, type Measured } from './baseline.js';
import { createSeed, DESTINATION_USERNAME, insertSeed, SOURCE_USERNAME, writeSnapshotSeed } from './seed.js';

/**
 * `node dist/bench/run.js [--backend snapshot|mongo] [--large] [--sizes 1000,10000] [--baseline-max N]
 * [--download]`: seeds a source customer with N jobs and N invoices, migrates it into a destination with
 * the engine (applyMigration) and again, on a fresh seed, with a per-document script (baseline.ts), and
 * reports commands, time, documents per second and peak RSS. Every (N, method) runs in its own child
 * process so its peak RSS is its own; seeding is done here, in the parent, so it is not part of it.
 */

/** Where the data is: a snapshot file, a real MongoDB, or the wire peer (the test tree's in-process peer). */
type Backend = 'snapshot' | 'mongo' | 'peer';
/** How a child reaches it: the peer is reached through the driver, like MongoDB. */
type Access = 'snapshot' | 'mongo';
type Method = 'engine' | 'baseline';

const LABELS: Record<Backend, string> = { snapshot: 'snapshot', mongo: 'mongodb', peer: 'wire peer' };

interface Run {
  backend: string;
  n: number;
  method: Method;
  commands?: number;
  seconds?: number;
  docsPerSecond?: number;
  modified?: number;
  chunks?: number;
  peakRssMiB?: number;
  error?: string;
  skipped?: string;
}

const OPTIONS: MigrationOptions = { mergeConflicts: true, convertToAdmin: false, skipInvoices: false };
const REQUEST = { sources: [SOURCE_USERNAME], destination: DESTINATION_USERNAME };
const DEFAULT_SIZES = [1_000, 10_000, 100_000];
const LARGE_SIZE = 1_000_000;
/**
 * Each per-document update on a snapshot is an updateMany that scans the whole collection (there is no _id
 * index), so the baseline there is quadratic in N; above this size it is skipped unless --baseline-max says
 * otherwise. MongoDB has no such limit.
 */
const SNAPSHOT_BASELINE_MAX = 10_000;
/** One round trip per document through the driver and the peer: bounded so the bench stays minutes long. */
const PEER_BASELINE_MAX = 10_000;
const resultsFile = (backend: Backend) =>
  fileURLToPath(new URL(`../../bench/results-${backend}.json`, import.meta.url));
const USAGE =
  'usage: node dist/bench/run.js [--backend snapshot|mongo|peer] [--large] [--sizes 1000,10000] [--baseline-max N] [--download]';

// ---------------------------------------------------------------------------------------------------------
// One measured run, in a child process.

async function engineSnapshot(file: string): Promise<Measured> {
  const counting = countingStore(await SnapshotStore.open(file));
  try {
    const started = performance.now();
    const applied = await applyMigration(counting.store, {
      ...REQUEST,
      options: OPTIONS,
      map: DEFAULT_REFERENCE_MAP,
      run: { id: randomUUID(), now: new Date() },
    });
    const seconds = (performance.now() - started) / 1000;
    return {
      modified: modifiedBy(applied.results),
      commands: counting.counts().total,
      seconds,
      chunks: applied.journal.chunks,
    };
  } finally {
    await counting.store.close();
  }
}

async function engineMongo(uri: string): Promise<Measured> {
  let commands = 0;
  const store = await MongoStore.open(uri, {
    onCommand: () => {
      commands += 1;
    },
  });
  try {
    const before = commands;
    const started = performance.now();
    const applied = await applyMigration(store, {
      ...REQUEST,
      options: OPTIONS,
      map: DEFAULT_REFERENCE_MAP,
      run: { id: randomUUID(), now: new Date() },
    });
    const seconds = (performance.now() - started) / 1000;
    return {
      modified: modifiedBy(applied.results),
      commands: commands - before,
      seconds,
      chunks: applied.journal.chunks,
    };
  } finally {
    await store.close();
  }
}

function modifiedBy(results: { modified: number }[]): number {
  return results.reduce((sum, result) => sum + result.modified, 0);
}

async function runOne(backend: Access, method: Method, target: string): Promise<void> {
  const measure = {
    snapshot: {
      engine: engineSnapshot,
      baseline: (file: string) => baselineSnapshot(file, REQUEST, DEFAULT_REFERENCE_MAP),
    },
    mongo: {
      engine: engineMongo,
      baseline: (uri: string) => baselineMongo(uri, REQUEST, DEFAULT_REFERENCE_MAP),
    },
  }[backend][method];
  const measured = await measure(target);
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ ...measured, peakRssMiB })}\n`);
}

function inChild(backend: Backend, method: Method, n: number, target: string): Promise<Run> {
  const script = fileURLToPath(import.meta.url);
  const access: Access = backend === 'snapshot' ? 'snapshot' : 'mongo';
  const child = fork(script, ['--one', access, method, String(n), target], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  return new Promise((resolve) => {
    const label = LABELS[backend];
    child.on('error', (error) =>
      resolve({ backend: label, n, method, error: `cannot start: ${error.message}` }),
    );
    child.on('close', (code, signal) => {
      const run: Run = { backend: label, n, method };
      const line = stdout.trim().split('\n').at(-1) ?? '';
      let reply: (Measured & { peakRssMiB: number }) | { error: string } | undefined;
      try {
        reply = JSON.parse(line);
      } catch {
        reply = undefined;
      }
      if (code === 0 && reply && !('error' in reply)) {
        resolve({
          ...run,
          commands: reply.commands,
          seconds: reply.seconds,
          docsPerSecond: reply.modified / reply.seconds,
          modified: reply.modified,
          peakRssMiB: reply.peakRssMiB,
          ...(reply.chunks === undefined ? {} : { chunks: reply.chunks }),
        });
      } else {
        const exit = signal ?? `code ${code}`;
        resolve({ ...run, error: reply && 'error' in reply ? reply.error : `child exited with ${exit}` });
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Seeding and clean-up, in the parent.

interface Backing {
  /** Seeds a fresh copy for one run and returns the child's target (a file or a URI) and its clean-up. */
  prepare(n: number, method: Method): Promise<{ target: string; dispose(): Promise<void> }>;
  close(): Promise<void>;
}

function snapshotBacking(): Backing {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agm-bench-'));
  return {
    async prepare(n, method) {
      const file = path.join(dir, `${n}-${method}.json`);
      await writeSnapshotSeed(file, createSeed(n));
      return { target: file, dispose: async () => rmSync(file, { force: true }) };
    },
    async close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function mongoBacking(server: MongoServer): Promise<Backing> {
  const client = new MongoClient(server.uri, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  const runId = `${process.pid}_${Date.now().toString(36)}`;
  return {
    async prepare(n, method) {
      const name = `agm_bench_${runId}_${n}_${method}`;
      const db = client.db(name);
      await insertSeed(db, createSeed(n));
      return { target: withDatabase(server.uri, name), dispose: async () => void (await db.dropDatabase()) };
    },
    async close() {
      await client.close();
      await server.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Report.

function table(runs: Run[]): string {
  const header = [
    'backend',
    'N',
    'method',
    'commands',
    'journal chunks',
    'seconds',
    'docs/s',
    'peak RSS MiB',
  ];
  const rows = runs.map((run) => {
    const note = run.error ? `error: ${run.error}` : run.skipped ? `skipped: ${run.skipped}` : undefined;
    return [
      run.backend,
      run.n.toLocaleString('en-US'),
      run.method,
      ...(note
        ? [note]
        : [
            String(run.commands),
            run.chunks === undefined ? '-' : String(run.chunks),
            (run.seconds as number).toFixed(3),
            Math.round(run.docsPerSecond as number).toLocaleString('en-US'),
            (run.peakRssMiB as number).toFixed(1),
          ]),
    ];
  });
  const widths = header.map((title, column) =>
    Math.max(
      title.length,
      // A skipped or failed run's note spans the numeric columns, so only the first three count for it.
      ...rows.filter((row) => column < 3 || row.length > 4).map((row) => (row[column] ?? '').length),
    ),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column < 3 ? cell.padEnd(widths[column] as number) : cell.padStart(widths[column] as number),
      )
      .join('  ')
      .trimEnd();
  const out = [line(header), line(widths.map((width) => '-'.repeat(width)))];
  const sizes = [...new Set(runs.map((run) => run.n))];
  for (const n of sizes) {
    for (const [index, run] of runs.entries()) {
      if (run.n !== n) continue;
      const row = rows[index] as string[];
      const lead = row.slice(0, 3).map((cell, column) => cell.padEnd(widths[column] as number));
      out.push(row.length > 4 ? line(row) : [...lead, row[3]].join('  '));
    }
    const engine = runs.find((run) => run.n === n && run.method === 'engine');
    const baseline = runs.find((run) => run.n === n && run.method === 'baseline');
    if (engine?.commands !== undefined && baseline?.commands !== undefined) {
      const commands = baseline.commands / engine.commands;
      const time = (baseline.seconds as number) / (engine.seconds as number);
      out.push(
        `  ratio baseline/engine at N=${n}: commands ${commands.toFixed(1)}x, time ${time.toFixed(1)}x`,
      );
      if (baseline.modified !== engine.modified) {
        out.push(`  WARNING: engine modified ${engine.modified} documents, baseline ${baseline.modified}`);
      }
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;

  if (values.one) {
    const [backend, method, , target] = positionals as [Access, Method, string, string];
    try {
      await runOne(backend, method, target);
      return 0;
    } catch (error) {
      process.stdout.write(`${JSON.stringify({ error: (error as Error).message })}\n`);
      return 1;
    }
  }

  const backend = values.backend as Backend;
  if (!(backend in LABELS)) {
    console.error(`bench: --backend must be snapshot, mongo or peer, not ${backend}\n${USAGE}`);
    return 2;
  }
  const sizes = values.sizes
    ? values.sizes.split(',').map((size) => Number(size.trim()))
    : [...DEFAULT_SIZES, ...(values.large ? [LARGE_SIZE] : [])];
  if (sizes.some((size) => !Number.isInteger(size) || size < 1)) {
    console.error(`bench: --sizes must be positive integers separated by commas\n${USAGE}`);
    return 2;
  }
  const baselineMax =
    values['baseline-max'] !== undefined
      ? Number(values['baseline-max'])
      : { snapshot: SNAPSHOT_BASELINE_MAX, peer: PEER_BASELINE_MAX, mongo: Number.POSITIVE_INFINITY }[
          backend
        ];
  if (Number.isNaN(baselineMax)) {
    console.error(`bench: --baseline-max must be a number\n${USAGE}`);
    return 2;
  }

  let backing: Backing;
  if (backend === 'mongo') {
    if (values.download) process.env.MONGOMS_RUNTIME_DOWNLOAD = 'true';
    else process.env.MONGOMS_RUNTIME_DOWNLOAD ??= 'false';
    const server = await startMongo();
    if ('skip' in server) {
      console.error(
        `bench: --backend mongo: ${server.skip}; --download lets mongodb-memory-server fetch one`,
      );
      return 2;
    }
    backing = await mongoBacking(server);
  } else if (backend === 'peer') {
    // Command counts and memory of the tool, through the real driver; its times are the peer's, not a server's.
    const peer = await startWirePeer();
    backing = await mongoBacking({ uri: peer.uri(), stop: () => peer.close() });
  } else {
    backing = snapshotBacking();
  }

  const runs: Run[] = [];
  try {
    for (const n of sizes) {
      for (const method of ['engine', 'baseline'] as const) {
        if (method === 'baseline' && n > baselineMax) {
          runs.push({
            backend: LABELS[backend],
            n,
            method,
            skipped: `above --baseline-max ${baselineMax} (one round trip per document)`,
          });
          continue;
        }
        process.stderr.write(`bench: ${backend} N=${n} ${method}...\n`);
        let prepared: Awaited<ReturnType<Backing['prepare']>>;
        try {
          prepared = await backing.prepare(n, method);
        } catch (error) {
          runs.push({
            backend: LABELS[backend],
            n,
            method,
            error: `seeding failed: ${(error as Error).message}`,
          });
          continue;
        }
        const { target, dispose } = prepared;
        try {
          runs.push(await inChild(backend, method, n, target));
        } finally {
          await dispose();
        }
      }
    }
  } finally {
    await backing.close();
  }

  console.log(table(runs));
  const results = {
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    backend: LABELS[backend],
    generatedAt: new Date().toISOString(),
    runs,
  };
  const file = resultsFile(backend);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), file) || file}`);
  return runs.some((run) => run.error) ? 1 : 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      backend: { type: 'string', default: 'snapshot' },
      large: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      'baseline-max': { type: 'string' },
      download: { type: 'boolean', default: false },
      one: { type: 'boolean', default: false },
    },
  });
}

process.exitCode = await main(process.argv.slice(2));
