import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ExitCode, RuntimeError } from '../../src/shared/errors.js';
import { openReadOnlyStore, openStore } from '../../src/store/index.js';
import { parseSnapshot, serializeSnapshot } from '../../src/store/snapshot.js';
import { readHistoryFile } from '../helpers/assertions.js';
import { type CliResult, LAUNCHER, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

function snapshot(name: string): string {
  const file = join(dir.path, name);
  writeFileSync(file, serializeSnapshot(demoData()));
  return file;
}

test('an execute store holds <file>.lock from open until close; a second one is refused naming it', async () => {
  const file = snapshot('held.json');
  const bytes = readFileSync(file);
  const store = await openStore({ kind: 'snapshot', file });
  const holder = readFileSync(`${file}.lock`, 'utf8').trim();
  assert.match(holder, new RegExp(`^pid ${process.pid} on .+ since \\S+$`));
  await assert.rejects(openStore({ kind: 'snapshot', file }), (error: unknown) => {
    assert.ok(error instanceof RuntimeError);
    assert.equal(error.exitCode, ExitCode.failed);
    assert.equal(
      error.message,
      `Another migration is running (lock ${file}.lock: ${holder}); wait for it, or delete the lock if no migration is running`,
    );
    return true;
  });
  const preview = await openReadOnlyStore({ kind: 'snapshot', file });
  assert.equal(await preview.count('users', {}), await store.count('users', {}), 'preview reads, unlocked');
  await preview.close();
  await store.transaction(async (tx) => {
    await tx.updateMany('users', { username: 'acme_west' }, { $set: { note: 'x' } });
  });
  assert.notDeepEqual(readFileSync(file), bytes);
  assert.ok(existsSync(`${file}.lock`), 'still held after the rename, until close');
  await store.close();
  assert.equal(existsSync(`${file}.lock`), false);
  await (await openStore({ kind: 'snapshot', file })).close();
});

test('a snapshot that fails to load does not keep the lock', async () => {
  const file = join(dir.path, 'broken.json');
  writeFileSync(file, '[1]');
  await assert.rejects(openStore({ kind: 'snapshot', file }), /must be an object of collections/);
  assert.equal(existsSync(`${file}.lock`), false);
});

/** The launcher in its own process, optionally with a module loaded first (`--import`). */
function launch(args: string[], preload?: string): { pid: number; done: Promise<CliResult> } {
  const child = spawn(
    process.execPath,
    [...(preload ? ['--import', pathToFileURL(preload).href] : []), LAUNCHER, ...args],
    { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
  );
  return { pid: child.pid ?? -1, done };
}

const migrate = (file: string, history: string) => [
  '--sources',
  'acme_west',
  '--destination',
  'acme_corporate',
  '--snapshot',
  file,
  '--output-file',
  history,
];

/** acme_west migrated exactly once: deactivated, and nothing left pointing at it. */
function assertMigratedOnce(file: string, histories: string[]): void {
  const data = parseSnapshot(readFileSync(file, 'utf8'), file);
  const users = data.get('users') ?? [];
  const migrated = users.filter((user) => user.migratedTo !== undefined);
  assert.deepEqual(
    migrated.map((user) => [user.username, String(user.migratedTo)]),
    [['acme_west', IDS.acme_corporate]],
  );
  assert.equal(users.filter((user) => String(user.parent) === IDS.acme_west).length, 0);
  const records = histories.filter(existsSync).flatMap(readHistoryFile);
  assert.deepEqual(
    records.map((record) => record.status),
    ['completed'],
  );
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    assert.ok(Date.now() < deadline, 'timed out waiting for the first run to reach its write');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('two runs in separate processes on one snapshot: the second is refused naming the first, exit 1, no change', async () => {
  const file = snapshot('two-processes.json');
  const [first, second] = [join(dir.path, 'first-history.json'), join(dir.path, 'second-history.json')];
  const waiting = join(dir.path, 'first-is-writing');
  const go = join(dir.path, 'first-may-finish');
  // Holds the first run inside its write of the snapshot (its first fsync) until the test says go.
  const preload = join(dir.path, 'hold-first-fsync.mjs');
  writeFileSync(
    preload,
    `import { existsSync, writeFileSync } from 'node:fs';
     import { open } from 'node:fs/promises';
     const handle = await open(${JSON.stringify(LAUNCHER)}, 'r');
     const prototype = Object.getPrototypeOf(handle);
     await handle.close();
     const sync = prototype.sync;
     let held = false;
     prototype.sync = async function () {
       if (!held) {
         held = true;
         writeFileSync(${JSON.stringify(waiting)}, '');
         while (!existsSync(${JSON.stringify(go)})) await new Promise((resolve) => setTimeout(resolve, 10));
       }
       return sync.call(this);
     };`,
  );
  const a = launch(migrate(file, first), preload);
  try {
    await until(() => existsSync(waiting));
    const bytes = readFileSync(file);

    const b = await launch(migrate(file, second)).done;
    assert.equal(b.code, 1, b.stderr);
    assert.match(
      b.stderr,
      new RegExp(
        `^Error: Another migration is running \\(lock .*two-processes\\.json\\.lock: pid ${a.pid} on .+ since \\S+\\); wait for it, or delete the lock if no migration is running$`,
        'm',
      ),
    );
    assert.deepEqual(readFileSync(file), bytes, 'the refused run changed nothing');
    assert.equal(existsSync(second), false, 'and recorded nothing');
  } finally {
    // Even when an assertion failed: the first run must not wait forever.
    writeFileSync(go, '');
  }
  const result = await a.done;
  assert.equal(result.code, 0, result.stderr);
  assertMigratedOnce(file, [first, second]);
  assert.equal(existsSync(`${file}.lock`), false);
});

test('two runs started together on one snapshot: exactly one migrates, the other is turned away', async () => {
  const file = snapshot('race.json');
  const histories = [join(dir.path, 'race-1.json'), join(dir.path, 'race-2.json')];
  const results = await Promise.all(histories.map((history) => launch(migrate(file, history)).done));
  const codes = results.map((result) => result.code).sort();
  assert.equal(codes[0], ExitCode.ok, results.map((result) => result.stderr).join('\n'));
  // Refused by the lock while the other runs (1), or, started after it finished, by acme_west being
  // deactivated already (2); never a second migration from the same starting point.
  assert.ok(codes[1] === ExitCode.failed || codes[1] === ExitCode.usage, `exit codes ${codes}`);
  assertMigratedOnce(file, histories);
});
