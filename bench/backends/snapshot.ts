import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSeed, writeSnapshotSeed } from '../seed.js';
import type { BenchBackend } from './index.js';

/** A snapshot file per run, in a temporary folder. */
export const snapshotBackend: BenchBackend = {
  label: 'snapshot',
  access: 'snapshot',
  /**
   * Each per-document update on a snapshot is an updateMany that scans the whole collection (there is no _id
   * index), so the baseline there is quadratic in N.
   */
  baselineMax: 10_000,
  copies: [['engine'], ['baseline']],
  async open() {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'agm-bench-'));
    return {
      async prepare(n, copy) {
        const file = path.join(dir, `${n}-${copy}.json`);
        await writeSnapshotSeed(file, createSeed(n));
        return { target: file, dispose: async () => rmSync(file, { force: true }) };
      },
      async close() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
