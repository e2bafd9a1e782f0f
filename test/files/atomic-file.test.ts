import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { replaceFile } from '../../src/files/atomic-file.js';
import { tempDir } from '../helpers/cli.js';

const dir = tempDir();
after(() => dir.remove());

function folder(name: string): string {
  const path = join(dir.path, name);
  mkdirSync(path);
  return path;
}

const modeOf = (file: string) => statSync(file).mode & 0o7777;

test('a symlink stays a link: the content goes to its final target, the temp file beside the target', async () => {
  const links = folder('links');
  const data = folder('data');
  const target = join(data, 'real.json');
  writeFileSync(target, 'old');
  symlinkSync('../data/real.json', join(links, 'middle.json'));
  symlinkSync('middle.json', join(links, 'history.json'));
  const inode = statSync(target).ino;

  await replaceFile(join(links, 'history.json'), 'new');

  assert.ok(lstatSync(join(links, 'history.json')).isSymbolicLink());
  assert.ok(lstatSync(join(links, 'middle.json')).isSymbolicLink());
  assert.equal(readlinkSync(join(links, 'history.json')), 'middle.json');
  assert.equal(readFileSync(target, 'utf8'), 'new');
  assert.notEqual(statSync(target).ino, inode, 'replaced by a rename, not rewritten in place');
  assert.deepEqual(readdirSync(links).sort(), ['history.json', 'middle.json']);
  assert.deepEqual(readdirSync(data), ['real.json']);
});

test('a dangling symlink is written through: its target is created, the link stays', async () => {
  const links = folder('dangling');
  symlinkSync('created.json', join(links, 'link.json'));
  await replaceFile(join(links, 'link.json'), 'first', { mode: 0o600 });
  assert.ok(lstatSync(join(links, 'link.json')).isSymbolicLink());
  assert.equal(readFileSync(join(links, 'created.json'), 'utf8'), 'first');
  assert.equal(modeOf(join(links, 'created.json')), 0o600);
});

test('an existing file keeps its mode; a new one gets the mode asked for', async () => {
  const files = folder('modes');
  for (const mode of [0o600, 0o640, 0o444]) {
    const file = join(files, `kept-${mode.toString(8)}.json`);
    writeFileSync(file, 'old');
    chmodSync(file, mode);
    await replaceFile(file, 'new', { mode: 0o666 });
    assert.equal(readFileSync(file, 'utf8'), 'new');
    assert.equal(modeOf(file).toString(8), mode.toString(8));
  }
  await replaceFile(join(files, 'new.json'), 'x', { mode: 0o600 });
  assert.equal(modeOf(join(files, 'new.json')).toString(8), '600');
});

test('an existing file keeps its owner and group when the process may set them', {
  skip: process.getuid?.() !== 0 && 'only root may give a file to another user',
}, async () => {
  const file = join(folder('owners'), 'owned.json');
  writeFileSync(file, 'old');
  chownSync(file, 12345, 23456);
  chmodSync(file, 0o2640);
  await replaceFile(file, 'new');
  const stats = statSync(file);
  assert.deepEqual([stats.uid, stats.gid, (stats.mode & 0o7777).toString(8)], [12345, 23456, '2640']);
});

test('a failed write leaves the target as it was and no temp file', async () => {
  const files = folder('failing');
  const target = join(files, 'is-a-folder');
  mkdirSync(target);
  writeFileSync(join(target, 'inside'), 'x');
  await assert.rejects(
    replaceFile(target, 'new'),
    /^RuntimeError: Cannot write .*is-a-folder: .*; the file was left as it was$/,
  );
  assert.deepEqual(readdirSync(files), ['is-a-folder']);
  assert.deepEqual(readdirSync(target), ['inside']);
});

test('the folder is flushed after the rename, so the rename itself survives a crash', async () => {
  const files = folder('durable');
  const file = join(files, 'f.json');
  const FileHandle = Object.getPrototypeOf(
    await open(import.meta.filename, 'r').then(async (h) => {
      await h.close();
      return h;
    }),
  );
  const sync = FileHandle.sync;
  const synced: string[] = [];
  FileHandle.sync = async function (this: Awaited<ReturnType<typeof open>>) {
    synced.push((await this.stat()).isDirectory() ? 'folder' : readdirSync(files).join(','));
    return sync.call(this);
  };
  try {
    await replaceFile(file, 'x');
  } finally {
    FileHandle.sync = sync;
  }
  assert.equal(synced.length, 2);
  assert.match(synced[0] ?? '', /^\.f\.json\.\d+\.[0-9a-f]+\.tmp$/, 'the temp file first, before its rename');
  assert.equal(synced[1], 'folder');
});

test('a process ended mid-write (a signal handler calling process.exit) leaves no temp file', async () => {
  const files = folder('interrupted');
  const file = join(files, 'f.json');
  writeFileSync(file, 'old');
  const atomic = new URL('../../src/files/atomic-file.js', import.meta.url).href;
  // The write hangs in fsync until SIGINT, whose handler ends the process as the history lock's does.
  const script = `
    import { open } from 'node:fs/promises';
    const { replaceFile } = await import(${JSON.stringify(atomic)});
    const handle = await open(${JSON.stringify(file)}, 'r');
    Object.getPrototypeOf(handle).sync = () => {
      process.kill(process.pid, 'SIGINT');
      return new Promise(() => {});
    };
    await handle.close();
    process.once('SIGINT', () => process.exit(1));
    setInterval(() => {}, 1000);
    await replaceFile(${JSON.stringify(file)}, 'new');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (exit) => resolve(exit)));
  assert.equal(code, 1);
  assert.deepEqual(readdirSync(files), ['f.json']);
  assert.equal(readFileSync(file, 'utf8'), 'old');
});
