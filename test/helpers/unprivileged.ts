import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { LAUNCHER, tempDir } from './cli.js';

/**
 * Root may read and write any file, so a permission check can only be seen failing by someone else: when the
 * tests run as root (as CI does), these children run as user nobody (65534); otherwise as the current user.
 */
const identity = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

/** A temp folder that the unprivileged child may enter (what it may do inside is up to each test). */
export function sharedTempDir(): { path: string; remove(): void } {
  const dir = tempDir();
  chmodSync(dir.path, 0o755);
  return dir;
}

/** Runs an ES module script (given as text) unprivileged; it may import the compiled sources by URL. */
export function runScriptUnprivileged(script: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    ...identity,
    encoding: 'utf8',
    timeout: 30_000,
  });
}

/** Runs the launcher unprivileged, as `node scripts/migrateCustomerData.js ...`. */
export function spawnCliUnprivileged(args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [LAUNCHER, ...args], {
    ...identity,
    cwd,
    env: { PATH: process.env.PATH },
    encoding: 'utf8',
    timeout: 60_000,
  });
}
