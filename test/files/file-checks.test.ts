import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkHistoryFile } from '../../src/files/history.js';
import { acquireLock } from '../../src/files/lock-file.js';
import { ExitCode, type MigrationError } from '../../src/shared/errors.js';
import { checkSnapshotWritable, serializeSnapshot } from '../../src/store/snapshot.js';
import { assertNoFile } from '../helpers/assertions.js';
import { LAUNCHER, runCli } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';
import { runScriptUnprivileged, sharedTempDir, spawnCliUnprivileged } from '../helpers/unprivileged.js';

const dir = sharedTempDir();
after(() => dir.remove());

const snapshot = join(dir.path, 'agmission.json');
writeFileSync(snapshot, serializeSnapshot(demoData()));
chmodSync(snapshot, 0o666);
const bytes = readFileSync(snapshot);
const migrate = ['--sources', 'acme_west', '--destination', 'acme_corporate'];
const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;

function path(name: string): string {
  return join(dir.path, name);
}

async function refusal(check: Promise<void>): Promise<{ exitCode: number; message: string }> {
  try {
    await check;
  } catch (error) {
    const { exitCode, message } = error as MigrationError;
    return { exitCode, message };
  }
  return assert.fail('the check passed');
}

/** What a check run by an unprivileged user says (see helpers/unprivileged.ts): 'ok' or the refusal. */
function checkUnprivileged(module: string, name: string, file: string): string {
  const url = new URL(module, import.meta.url).href;
  const result = runScriptUnprivileged(
    `const checks = await import(${JSON.stringify(url)});
     try { await checks[${JSON.stringify(name)}](${JSON.stringify(file)}); console.log('ok'); }
     catch (error) { console.log(error.exitCode + ' ' + error.message); }`,
  );
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

/** The refusal a check gives is exactly what an execution says, and the execution changes nothing. */
async function executeRefuses(history: string, expected: { exitCode: number; message: string }) {
  const result = await runCli([...migrate, '--snapshot', snapshot, '--output-file', history]);
  assert.equal(result.code, expected.exitCode, result.stderr);
  assert.equal(result.stderr.split('\n')[0], `Error: ${expected.message}`);
  assert.deepEqual(readFileSync(snapshot), bytes);
  assertNoFile(`${snapshot}.lock`);
}

describe('checkHistoryFile', () => {
  test('passes an absent file (creating nothing, not even its folder) and a JSON array', async () => {
    await checkHistoryFile(path('absent.json'));
    await checkHistoryFile(path('new-folder/deeper/h.json'));
    assertNoFile(path('new-folder'));
    writeFileSync(path('array.json'), '[]\n');
    await checkHistoryFile(path('array.json'));
    assertNoFile(path('array.json.lock'));
  });

  test('refuses as execute does: corrupt, a folder, a folder that cannot be made, a held lock', async () => {
    writeFileSync(path('corrupt.json'), '[{"id": ');
    mkdirSync(path('a-folder.json'));
    writeFileSync(path('plain-file'), 'x');
    writeFileSync(path('locked.json'), '[]');
    const lock = await acquireLock(path('locked.json.lock'));
    const holder = readFileSync(path('locked.json.lock'), 'utf8').trim();
    try {
      const cases: [string, number, string][] = [
        [
          'corrupt.json',
          ExitCode.usage,
          `History file ${path('corrupt.json')} is not a JSON array; move it aside or choose another --output-file (it was not changed)`,
        ],
        [
          'a-folder.json',
          ExitCode.usage,
          `History file ${path('a-folder.json')} is not a regular file (a folder); choose another --output-file`,
        ],
        [
          'plain-file/sub/h.json',
          ExitCode.usage,
          `History file ${path('plain-file/sub/h.json')} cannot be written: folder ${path('plain-file/sub')} cannot be created, ${path('plain-file')} is not a folder; choose another --output-file`,
        ],
        [
          'locked.json',
          ExitCode.failed,
          `Another migration is running (lock ${path('locked.json.lock')}: ${holder}); wait for it, or delete the lock if no migration is running`,
        ],
      ];
      for (const [name, exitCode, message] of cases) {
        const refused = await refusal(checkHistoryFile(path(name)));
        assert.deepEqual(refused, { exitCode, message }, name);
        await executeRefuses(path(name), refused);
      }
    } finally {
      await lock.release();
    }
    assert.equal(readFileSync(path('corrupt.json'), 'utf8'), '[{"id": ');
    assert.equal(readFileSync(path('locked.json'), 'utf8'), '[]');
  });

  test('a FIFO is refused without being opened (opening it would wait for a writer forever)', {
    skip: !hasMkfifo && 'no mkfifo',
    timeout: 10_000,
  }, async () => {
    const fifo = path('history.fifo');
    spawnSync('mkfifo', [fifo]);
    const refused = await refusal(checkHistoryFile(fifo));
    assert.deepEqual(refused, {
      exitCode: ExitCode.usage,
      message: `History file ${fifo} is not a regular file (a FIFO, device or socket); choose another --output-file`,
    });
    await executeRefuses(fifo, refused);
  });

  test('/proc and /sys paths, and links into them, are refused at once (stdin is never read)', async () => {
    symlinkSync('/proc/self/fd/0', path('stdin-link.json'));
    const cases: [string, string][] = [
      ['/proc/self/fd/0', 'is under /proc, which holds no files'],
      ['/sys/kernel/history.json', 'is under /sys, which holds no files'],
      [path('stdin-link.json'), 'leads into /proc, which holds no files'],
    ];
    if (existsSync('/dev/stdin')) cases.push(['/dev/stdin', 'leads into /proc, which holds no files']);
    for (const [file, problem] of cases) {
      assert.deepEqual(await refusal(checkHistoryFile(file)), {
        exitCode: ExitCode.usage,
        message: `History file ${file} ${problem}; choose another --output-file`,
      });
      // The launcher with an open stdin that never ends: reading it would hang until the timeout.
      const child = spawn(
        process.execPath,
        [LAUNCHER, ...migrate, '--snapshot', snapshot, '--output-file', file],
        { stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 },
      );
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      const code = await new Promise((resolve) => child.on('close', resolve));
      child.stdin.destroy();
      assert.equal(code, ExitCode.usage, `${file}: ${stderr}`);
      assert.equal(stderr, `Error: History file ${file} ${problem}; choose another --output-file\n`);
      assert.deepEqual(readFileSync(snapshot), bytes);
    }
  });

  test('refused for a user who may not read it or write its folder', () => {
    const writable = path('writable-history-folder');
    mkdirSync(writable);
    chmodSync(writable, 0o777);
    const unreadable = join(writable, 'unreadable.json');
    writeFileSync(unreadable, '[]');
    chmodSync(unreadable, 0o000);
    const locked = path('locked-folder');
    mkdirSync(locked);
    // The lock would go beside the link, in a folder this user may not write.
    symlinkSync(join(writable, 'h.json'), join(locked, 'link.json'));
    chmodSync(locked, 0o555);
    const check = (file: string) => checkUnprivileged('../../src/files/history.js', 'checkHistoryFile', file);
    assert.match(
      check(unreadable),
      /^2 Cannot read history file .*unreadable\.json: EACCES: permission denied, open .*; choose another --output-file$/,
    );
    assert.equal(
      check(join(locked, 'h.json')),
      `2 History file ${join(locked, 'h.json')} cannot be written: ${locked} is not a writable folder (EACCES); choose another --output-file`,
    );
    assert.equal(
      check(join(locked, 'link.json')),
      `2 History file ${join(locked, 'link.json')} cannot be written: ${locked} is not a writable folder (EACCES); choose another --output-file`,
    );
    assert.equal(check(join(writable, 'h.json')), 'ok');
    assert.equal(
      check(join(locked, 'sub', 'h.json')),
      `2 History file ${join(locked, 'sub', 'h.json')} cannot be written: folder ${join(locked, 'sub')} cannot be created, ${locked} is not a writable folder (EACCES); choose another --output-file`,
    );
  });
});

describe('checkSnapshotWritable', () => {
  test('passes a writable snapshot whose lock is free, writing nothing', async () => {
    await checkSnapshotWritable(snapshot);
    assert.deepEqual(readFileSync(snapshot), bytes);
    assertNoFile(`${snapshot}.lock`);
  });

  test('refuses a missing snapshot, one that is not a file, and one whose lock is held (naming the holder)', async () => {
    assert.deepEqual(await refusal(checkSnapshotWritable(path('missing.json'))), {
      exitCode: ExitCode.usage,
      message: `Cannot read snapshot ${path('missing.json')}: ENOENT; check the --snapshot path`,
    });
    mkdirSync(path('folder-snapshot.json'));
    assert.deepEqual(await refusal(checkSnapshotWritable(path('folder-snapshot.json'))), {
      exitCode: ExitCode.usage,
      message: `Snapshot ${path('folder-snapshot.json')} is not a regular file; save it to a file and give that`,
    });
    const lock = await acquireLock(`${snapshot}.lock`);
    const holder = readFileSync(`${snapshot}.lock`, 'utf8').trim();
    try {
      assert.deepEqual(await refusal(checkSnapshotWritable(snapshot)), {
        exitCode: ExitCode.failed,
        message: `Another migration is running (lock ${snapshot}.lock: ${holder}); wait for it, or delete the lock if no migration is running`,
      });
    } finally {
      await lock.release();
    }
  });

  test('refuses, as execute does, a snapshot the user may not write or whose folder it may not write', () => {
    const shared = path('shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const readOnly = join(shared, 'read-only.json');
    writeFileSync(readOnly, bytes);
    chmodSync(readOnly, 0o444);
    const lockedFolder = path('locked-snapshot-folder');
    mkdirSync(lockedFolder);
    const inLockedFolder = join(lockedFolder, 'agmission.json');
    writeFileSync(inLockedFolder, bytes);
    chmodSync(inLockedFolder, 0o666);
    chmodSync(lockedFolder, 0o555);
    // The new version would go beside the link's target, in a folder this user may not write.
    const link = join(shared, 'link.json');
    symlinkSync(inLockedFolder, link);
    const cases: [string, string][] = [
      [
        readOnly,
        `Snapshot ${readOnly} is not writable (EACCES); make it writable, or run --preview, which only reads it`,
      ],
      [
        inLockedFolder,
        `Snapshot ${inLockedFolder} cannot be replaced: ${lockedFolder} is not a writable folder (EACCES); make the folder writable, or work on a copy elsewhere`,
      ],
      [
        link,
        `Snapshot ${link} cannot be replaced: ${lockedFolder} is not a writable folder (EACCES); make the folder writable, or work on a copy elsewhere`,
      ],
    ];
    for (const [file, message] of cases) {
      assert.equal(
        checkUnprivileged('../../src/store/snapshot.js', 'checkSnapshotWritable', file),
        `2 ${message}`,
      );
      const history = join(shared, 'history.json');
      const result = spawnCliUnprivileged([...migrate, '--snapshot', file, '--output-file', history], shared);
      assert.equal(result.status, ExitCode.usage, result.stderr);
      assert.equal(result.stderr, `Error: ${message}\n`);
      assert.deepEqual(readFileSync(file), bytes);
      assertNoFile(`${file}.lock`);
      assertNoFile(history);
      // The preview still shows the plan (it only reads), and says execution would be refused, with its code.
      const preview = spawnCliUnprivileged(
        ['--preview', ...migrate, '--snapshot', file, '--output-file', history],
        shared,
      );
      assert.equal(preview.status, ExitCode.usage, preview.stderr);
      assert.match(preview.stdout, /Actions on execute|Execution would be BLOCKED:\n/);
      assert.ok(preview.stdout.includes(`Execution would be BLOCKED:\n  - ${message}\n`), preview.stdout);
    }
  });
});
