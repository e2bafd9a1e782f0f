#!/usr/bin/env node
// `npm run mutation [-- group...]`: StrykerJS on the modules that decide what happens to data (README,
// "Mutation testing"). Not in CI: it takes long. Each group mutates its modules and runs only the test files
// that exercise them; Stryker's per-file coverage then runs, for each mutant, only the files that reach it.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Stryker } from '@stryker-mutator/core';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

const GROUPS = {
  secrets: {
    mutate: ['src/shared/secrets.ts'],
    tests: ['shared/secrets', 'files/history', 'report/command-line', 'cli/input-errors'],
  },
  history: {
    mutate: ['src/files/history.ts'],
    tests: ['files/*', 'shared/secrets', 'commands/history', 'cli/input-errors', 'transaction/*'],
  },
  verify: {
    mutate: ['src/commands/verify.ts'],
    // The scenario suites verify too, but take minutes per mutant; commands/verify checks each verdict.
    tests: ['commands/verify'],
  },
  transaction: {
    mutate: [
      'src/transaction/apply.ts',
      'src/transaction/journal.ts',
      'src/transaction/commit.ts',
      'src/transaction/restore.ts',
      'src/transaction/rollback-plan.ts',
    ],
    tests: [
      'transaction/*',
      'scenarios/rollback',
      'scenarios/failures',
      'scenarios/commit-settle',
      'scenarios/merge-convert',
      'scenarios/references',
      'scenarios/live-writes',
      'commands/execute',
      'wire-shape',
    ],
  },
  mongo: {
    // What decides what happens to data: the reads that keep BSON types, the transaction's reads and writes, the
    // transaction and its commit, and settling an unknown commit. (Connecting, server checks and error messages
    // are covered by the suites, not by mutation testing: each mutant there costs a whole fault suite.)
    mutate: ['src/store/mongo.ts:128-175', 'src/store/mongo.ts:466-637'],
    tests: [
      'store/mongo',
      'wire-shape',
      'transaction/*',
      'scenarios/commit-settle',
      'scenarios/mongo-faults',
    ],
  },
};

// Stryker's build step, in its sandbox: the tests that check file permissions run a child as user nobody (when
// run as root), which must be able to read the compiled sources there (the sandbox folder is made 0700).
if (process.argv[2] === '--build') {
  chmodSync('.', 0o755);
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  process.exit(0);
}

const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !(name in GROUPS));
if (unknown.length > 0) {
  console.error(`Unknown group(s): ${unknown.join(', ')}; the groups are: ${Object.keys(GROUPS).join(', ')}`);
  process.exit(2);
}
const concurrency = Number(process.env.MUTATION_CONCURRENCY ?? 1);
const rows = [];
let failed = false;
for (const name of asked.length > 0 ? asked : Object.keys(GROUPS)) {
  const group = GROUPS[name];
  const started = Date.now();
  console.log(`\n== mutation group ${name}: ${group.mutate.join(', ')} ==`);
  const results = await new Stryker({
    mutate: group.mutate,
    testRunner: 'tap',
    tap: {
      testFiles: group.tests.map((test) => `dist/test/${test}.test.js`),
      nodeArgs: ['--test-reporter=tap', '-r', '{{hookFile}}', '{{testFile}}'],
    },
    // The sandbox gets the instrumented sources (every mutant behind a switch) and compiles them once.
    buildCommand: 'node scripts/mutation.js --build',
    checkers: ['typescript'],
    tsconfigFile: 'tsconfig.json',
    typescriptChecker: { prioritizePerformanceOverAccuracy: true },
    coverageAnalysis: 'perTest',
    concurrency,
    ignorePatterns: ['dist', 'reports', '.agm-*', 'bench/results-*.json'],
    tempDirName: '.stryker-tmp',
    reporters: ['html', 'json', 'progress'],
    htmlReporter: { fileName: `reports/mutation/${name}.html` },
    jsonReporter: { fileName: `reports/mutation/${name}.json` },
    timeoutMS: 10_000,
    cleanTempDir: 'always',
  }).runMutationTest();
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  // A module may be given as line ranges (`file:from-to`): scored once, over the mutants of all its ranges.
  for (const file of new Set(group.mutate.map((pattern) => pattern.replace(/:[\d-]+$/, '')))) {
    const mine = results.filter(
      (result) => path.relative(root, path.resolve(root, result.fileName)) === file,
    );
    const count = (...statuses) => mine.filter((result) => statuses.includes(result.status)).length;
    const detected = count('Killed', 'Timeout');
    const undetected = count('Survived', 'NoCoverage');
    const score = detected + undetected === 0 ? 100 : (100 * detected) / (detected + undetected);
    rows.push({ group: name, file, score, detected, undetected, minutes });
    for (const survivor of mine.filter((result) => ['Survived', 'NoCoverage'].includes(result.status))) {
      const at = survivor.location.start;
      const replacement = (survivor.replacement ?? '').replace(/\s+/g, ' ').slice(0, 80);
      console.log(
        `  ${survivor.status} ${file}:${at.line}:${at.column + 1} ${survivor.mutatorName}: ${replacement}`,
      );
    }
    if (score < 85) failed = true;
  }
}
console.log('\nMutation score (killed + timed out, of mutants that compile):');
for (const row of rows) {
  console.log(
    `  ${row.file.padEnd(34)} ${row.score.toFixed(1).padStart(5)} %  (${row.detected} killed, ${row.undetected} survived; group ${row.group}, ${row.minutes} min)`,
  );
}
mkdirSync(path.join(root, 'reports', 'mutation'), { recursive: true });
writeFileSync(
  path.join(root, 'reports', 'mutation', `scores-${asked.join('-') || 'all'}.json`),
  `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`,
);
process.exitCode = failed ? 1 : 0;
