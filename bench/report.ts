import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Run } from './child.js';

/** The results as a table for the terminal, with the baseline/engine ratio per size. */
export function table(runs: Run[]): string {
  const header = [
    'backend',
    'N',
    'method',
    'commands',
    'journal chunks',
    'seconds',
    'cpu s',
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
            (run.cpuSeconds as number).toFixed(3),
            // A preview moves nothing: its rate would say nothing.
            run.modified ? Math.round(run.docsPerSecond as number).toLocaleString('en-US') : '-',
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
    for (const ratio of floorRatios(runs).filter((each) => each.n === n)) {
      out.push(
        `  ratio ${ratio.method}/floor at N=${n}: time ${ratio.time.toFixed(1)}x, cpu ${ratio.cpu.toFixed(1)}x`,
      );
    }
  }
  return out.join('\n');
}

/**
 * How much longer than the floor (decoding every document of the dump) the preview and the execution took: wall
 * time, and CPU time (what the run costs whatever else the machine is doing).
 */
export function floorRatios(
  runs: Run[],
): { n: number; method: 'preview' | 'engine'; time: number; cpu: number }[] {
  const ratios = [];
  for (const floor of runs.filter((run) => run.method === 'floor' && run.seconds)) {
    for (const method of ['preview', 'engine'] as const) {
      const run = runs.find((each) => each.n === floor.n && each.method === method);
      if (!run?.seconds) continue;
      const time = run.seconds / (floor.seconds as number);
      ratios.push({
        n: floor.n,
        method,
        time,
        cpu: (run.cpuSeconds as number) / (floor.cpuSeconds as number),
      });
    }
  }
  return ratios;
}

/** Writes bench/results-<backend>.json (the machine, the back end, every run) and returns its path. */
export function writeResults(backend: string, label: string, runs: Run[]): string {
  const results = {
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    backend: label,
    generatedAt: new Date().toISOString(),
    runs,
    ...(runs.some((run) => run.method === 'floor') ? { floorRatios: floorRatios(runs) } : {}),
  };
  const file = fileURLToPath(new URL(`../../bench/results-${backend}.json`, import.meta.url));
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return path.relative(process.cwd(), file) || file;
}
