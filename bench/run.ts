import { type BenchArgs, parseBenchArgs, USAGE } from './args.js';
import { type Access, BACKENDS, type Backing } from './backends/index.js';
import { inChild, type Run } from './child.js';
import { table, writeResults } from './report.js';

/**
 * `npm run bench -- [--backend snapshot|mongo|peer] [--large] [--sizes 1000,10000] [--baseline-max N]
 * [--download]`: seeds a source customer with N jobs and N invoices, migrates it into a destination with
 * the engine (applyMigration) and again, on a fresh seed, with a per-document script (baseline.ts), and
 * reports commands, time, documents per second and peak RSS. Every (N, method) runs in its own child
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
      for (const method of ['engine', 'baseline'] as const) {
        if (method === 'baseline' && n > baselineMax) {
          runs.push({
            backend: backend.label,
            n,
            method,
            skipped: `above --baseline-max ${baselineMax} (one round trip per document)`,
          });
          continue;
        }
        process.stderr.write(`bench: ${args.backend} N=${n} ${method}...\n`);
        runs.push(await measured(backing, backend.label, backend.access, method, n));
      }
    }
  } finally {
    await backing.close();
  }
  console.log(table(runs));
  console.log(`\nwrote ${writeResults(args.backend, backend.label, runs)}`);
  return runs.some((run) => run.error) ? 1 : 0;
}

/** Seeds a fresh copy, measures one run of it in a child process, and removes the copy. */
async function measured(
  backing: Backing,
  label: string,
  access: Access,
  method: Run['method'],
  n: number,
): Promise<Run> {
  let prepared: Awaited<ReturnType<Backing['prepare']>>;
  try {
    prepared = await backing.prepare(n, method);
  } catch (error) {
    return { backend: label, n, method, error: `seeding failed: ${(error as Error).message}` };
  }
  try {
    return await inChild(label, access, method, n, prepared.target);
  } finally {
    await prepared.dispose();
  }
}

process.exitCode = await main(process.argv.slice(2));
