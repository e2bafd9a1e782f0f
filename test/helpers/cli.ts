import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Environment, main } from '../../src/cli.js';
import { PROJECT_ROOT } from '../../src/options.js';
import { openReadOnlyStore, openStore } from '../../src/store/index.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the tool in this process, with an empty environment unless given one (no stray MONGODB_URI). */
export async function runCli(args: string[], overrides: Partial<Environment> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    env: {},
    cwd: process.cwd(),
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    openReadOnlyStore,
    openStore,
    ...overrides,
  });
  return { code, stdout, stderr };
}

export const LAUNCHER = join(PROJECT_ROOT, 'scripts', 'migrateCustomerData.js');

/** Runs the launcher exactly as the guide does: `node scripts/migrateCustomerData.js ...`. */
export function spawnCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const result = spawnSync(process.execPath, [LAUNCHER, ...args], {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: { PATH: process.env.PATH, ...options.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

export function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'agm-test-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
