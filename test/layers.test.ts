import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The layout is the design: src/ is a pipeline of layers, and a module imports only from its own layer or the
 * layers below it (README, "Design"). This test reads the TypeScript sources, so the rule holds for the code as
 * written, type-only imports included.
 */

/** Top to bottom. `src/cli.ts` belongs to `cli`. */
export const LAYERS = [
  'cli',
  'commands',
  'report',
  'transaction',
  'plan',
  'store',
  'files',
  'shared',
] as const;

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [relative(SRC, path)] : [];
  });
}

function layerOf(file: string): string {
  return file === 'cli.ts' ? 'cli' : (file.split('/')[0] as string);
}

/** Relative imports of a module, as src-relative .ts paths. */
function importsOf(file: string, text: string): string[] {
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)'(\.{1,2}\/[^']+)\.js'/g)];
  return specifiers.map(([, spec]) => normalize(join(dirname(file), `${spec}.ts`)));
}

/** Every import that goes up the list, or leaves src/. */
export function upwardImports(files: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [file, text] of files) {
    const from = LAYERS.indexOf(layerOf(file) as (typeof LAYERS)[number]);
    if (from < 0) problems.push(`${file} is in no layer (${LAYERS.join(', ')})`);
    for (const target of importsOf(file, text)) {
      const to = LAYERS.indexOf(layerOf(target) as (typeof LAYERS)[number]);
      if (to < from) problems.push(`${file} imports ${target}, a layer above it`);
    }
  }
  return problems;
}

/** The plan is read-only by construction: it names no store type that can write. */
export function writingStoreTypes(files: Map<string, string>): string[] {
  return [...files]
    .filter(([file]) => layerOf(file) === 'plan')
    .filter(([, text]) =>
      /\b(TransactionStore|Store)\b/.test(text.replace(/\b(ReadStore|ReadOnlyStore)\b/g, '')),
    )
    .map(([file]) => `${file} names a store type that can write`);
}

const tree = new Map(sources(SRC).map((file) => [file, readFileSync(join(SRC, file), 'utf8')]));

test('every module of src/ imports only from its own layer or the ones below it', () => {
  assert.ok(tree.size > 30, `read ${tree.size} modules`);
  assert.deepEqual(upwardImports(tree), []);
});

test('the plan layer reaches the store through its read-only contract alone', () => {
  assert.deepEqual(writingStoreTypes(tree), []);
  for (const [file, text] of tree) {
    if (layerOf(file) !== 'plan') continue;
    for (const target of importsOf(file, text)) {
      if (layerOf(target) === 'store') assert.equal(target, 'store/types.ts', `${file} imports ${target}`);
    }
  }
});

test('the checks themselves see a violation', () => {
  const bad = new Map([
    ['store/mongo.ts', "import { scan } from '../plan/scan.js';"],
    ['plan/scan.ts', "import type { TransactionStore } from '../store/types.js';"],
    ['helpers.ts', ''],
  ]);
  assert.deepEqual(upwardImports(bad), [
    'store/mongo.ts imports plan/scan.ts, a layer above it',
    'helpers.ts is in no layer (cli, commands, report, transaction, plan, store, files, shared)',
  ]);
  assert.deepEqual(writingStoreTypes(bad), ['plan/scan.ts names a store type that can write']);
});
