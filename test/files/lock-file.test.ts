import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { acquireLock, checkLockFree } from '../../src/files/lock-file.js';
import { ExitCode, RuntimeError } from '../../src/shared/errors.js';
import { tempDir } from '../helpers/cli.js';

const dir = tempDir();
after(() => dir.remove());

const refusal = (lockFile: string, holder: string) => (error: unknown) => {
  assert.ok(error instanceof RuntimeError);
  assert.equal(error.exitCode, ExitCode.failed);
  assert.equal(error.context.unrecordable, true, 'a run kept out records nothing');
  assert.equal(
    error.message,
    `Another migration is running (lock ${lockFile}: ${holder}); wait for it, or delete the lock if no migration is running`,
  );
  return true;
};

test('the lock names its holder; a second taker and a check are refused naming it; release frees it', async () => {
  const lockFile = join(dir.path, 'a.lock');
  const lock = await acquireLock(lockFile);
  const holder = readFileSync(lockFile, 'utf8').trim();
  const [, pid, host, since] = /^pid (\d+) on (.+) since (\S+)$/.exec(holder) ?? [];
  assert.deepEqual([Number(pid), host], [process.pid, hostname()]);
  assert.equal(new Date(since ?? '').toISOString(), since);
  await assert.rejects(acquireLock(lockFile), refusal(lockFile, holder));
  await assert.rejects(checkLockFree(lockFile), refusal(lockFile, holder));
  await lock.release();
  assert.equal(existsSync(lockFile), false);
  await checkLockFree(lockFile);
  await (await acquireLock(lockFile)).release();
});

test('of many simultaneous takers exactly one gets the lock', async () => {
  const lockFile = join(dir.path, 'race.lock');
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => acquireLock(lockFile)));
  assert.equal(results.filter((result) => result.status === 'fulfilled').length, 1);
});

test('release removes only our own lock, never one another run took after ours was deleted', async () => {
  const lockFile = join(dir.path, 'stolen.lock');
  const lock = await acquireLock(lockFile);
  rmSync(lockFile);
  writeFileSync(lockFile, 'pid 1 on other-host since 2026-01-01T00:00:00.000Z\n');
  await lock.release();
  assert.equal(readFileSync(lockFile, 'utf8'), 'pid 1 on other-host since 2026-01-01T00:00:00.000Z\n');
});

test('a holder that cannot be read is "unknown holder", and a FIFO in its place is never opened', {
  skip: spawnSync('mkfifo', ['--version']).status !== 0 && 'no mkfifo',
}, async () => {
  const lockFile = join(dir.path, 'fifo.lock');
  assert.equal(spawnSync('mkfifo', [lockFile]).status, 0);
  await assert.rejects(checkLockFree(lockFile), refusal(lockFile, 'unknown holder'));
  await assert.rejects(acquireLock(lockFile), refusal(lockFile, 'unknown holder'));
});

test('a process ended by process.exit (as the signal handlers do) removes its own locks, not others', () => {
  const ours = join(dir.path, 'exit.lock');
  const theirs = join(dir.path, 'theirs.lock');
  const lockModule = new URL('../../src/files/lock-file.js', import.meta.url).href;
  const script = `
    import { rmSync, writeFileSync } from 'node:fs';
    const { acquireLock } = await import(${JSON.stringify(lockModule)});
    await acquireLock(${JSON.stringify(ours)});
    await acquireLock(${JSON.stringify(theirs)});
    rmSync(${JSON.stringify(theirs)});
    writeFileSync(${JSON.stringify(theirs)}, 'pid 1 on other-host since 2026-01-01T00:00:00.000Z\\n');
    process.exit(1);
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(child.status, 1, child.stderr);
  assert.equal(existsSync(ours), false);
  assert.equal(readFileSync(theirs, 'utf8'), 'pid 1 on other-host since 2026-01-01T00:00:00.000Z\n');
});

test('a lock that cannot be created says why and what to check', async () => {
  const lockFile = join(dir.path, 'no-such-folder', 'x.lock');
  await assert.rejects(
    acquireLock(lockFile),
    /^RuntimeError: Cannot create lock .*x\.lock: ENOENT.*; check that its folder exists and is writable$/,
  );
});
