import { type BenchArgs, parseBenchArgs, USAGE } from './args.js';
import { type Access, BACKENDS, type Backing, type Method } from './backends/index.js';
import { inChild, type Run } from './child.js';
import { table, writeResults } from './report.js';

/**
 * `npm run bench -- [--backend snapshot|mongo|peer|dump] [--large] [--sizes 1000,10000] [--baseline-max N]
 * [--download]`: seeds a source customer with N jobs and N invoices, migrates it into a destination with
 * the engine (applyMigration) and again, on a fresh seed, with a per-document script (baseline.ts), and
 * reports commands, time, documents per second and peak RSS. On a dump, the preview and the floor (plain
 * decoding of every document, floor.ts) are measured instead of the baseline. Every (N, method) runs in its own child
 * process (measure.ts) so its peak RSS is its own; seeding is done here, in the parent, so it is not part of it.
 */
async function main(argv: string[]): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const backend = BACKENDS[args.backend];
  const baselineMax = args.baselineMax ?? backend.baselineMax;
  const backing = await backend.open({ download: args.download });
  if (typeof backing === 'string') {
    console.error(`bench: --backend ${args.backend}: ${backing}`);
    return 2;
  }
  const runs: Run[] = [];
  try {
    for (const n of args.sizes) {
      for (const methods of backend.copies) {
        if (methods.includes('baseline') && n > baselineMax) {
          runs.push({
            backend: backend.label,
            n,
            method: 'baseline',
            skipped: `above --baseline-max ${baselineMax} (one round trip per document)`,
          });
          continue;
        }
        runs.push(...(await measured(backing, backend.label, backend.access, methods, n)));
      }
    }
  } finally {
    await backing.close();
  }
  console.log(table(runs));
  console.log(`\nwrote ${writeResults(args.backend, backend.label, runs)}`);
  return runs.some((run) => run.error) ? 1 : 0;
}

/**
 * Seeds a fresh copy and measures each of `methods` on it in turn, each in its own child process, then removes
 * the copy. After the engine's migration, `verify` and `rollback --preview` of it are measured too.
 */
async function measured(
  backing: Backing,
  label: string,
  access: Access,
  methods: Method[],
  n: number,
): Promise<Run[]> {
  let prepared: Awaited<ReturnType<Backing['prepare']>>;
  try {
    prepared = await backing.prepare(n, methods.join('-'));
  } catch (error) {
    const message = `seeding failed: ${(error as Error).message}`;
    return methods.map((method) => ({ backend: label, n, method, error: message }));
  }
  try {
    const runs: Run[] = [];
    for (const method of methods) {
      process.stderr.write(`bench: ${label} N=${n} ${method}...\n`);
      const run = await inChild(label, access, method, n, prepared.target);
      runs.push(run);
      if (method !== 'engine' || !run.migrationId) continue;
      for (const reader of ['verify', 'rollback-preview'] as const) {
        process.stderr.write(`bench: ${label} N=${n} ${reader}...\n`);
        runs.push(await inChild(label, access, reader, n, prepared.target, run.migrationId));
      }
    }
    return runs;
  } finally {
    await prepared.dispose();
  }
}

process.exitCode = await main(process.argv.slice(2));
