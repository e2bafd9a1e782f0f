import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSeed, writeDumpSeed } from '../seed.js';
import type { BenchBackend } from './index.js';

/**
 * A mongodump folder per N, in a temporary folder. The floor and the preview read it as seeded, then the engine
 * migrates it (verify and rollback --preview follow): one copy serves them all, as a rehearsal would.
 */
export const dumpBackend: BenchBackend = {
  label: 'dump',
  access: 'dump',
  // A dump has no _id index to update one document by: a per-document script is not a way anyone would use it.
  baselineMax: 0,
  copies: [['floor', 'preview', 'engine']],
  async open() {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'agm-bench-dump-'));
    return {
      async prepare(n, copy) {
        const folder = path.join(dir, `${n}-${copy}`);
        await writeDumpSeed(folder, createSeed(n));
        return { target: folder, dispose: async () => rmSync(folder, { recursive: true, force: true }) };
      },
      async close() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
