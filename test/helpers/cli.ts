import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/cli/options.js';
import { type Environment, main } from '../../src/cli.js';
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

/**
 * `node <script> ...args` in a child process, without blocking this one: what a test needs when the server
 * the child talks to (the wire peer) runs in this process and must keep answering.
 */
export function spawnNodeAsync(
  script: string,
  args: string[],
  options: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    /**
     * Send `signal` to the child `afterMs` after its stderr first matches `when` (a real Ctrl-C, SIGTERM or
     * dropped ssh session).
     */
    interrupt?: { when: RegExp; signal: NodeJS.Signals; afterMs?: number };
  } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: options.cwd ?? PROJECT_ROOT,
      env: options.env ?? { PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    let interrupted = false;
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
      if (options.interrupt && !interrupted && options.interrupt.when.test(stderr)) {
        interrupted = true;
        const { signal, afterMs = 0 } = options.interrupt;
        setTimeout(() => child.kill(signal), afterMs);
      }
    });
    const timer = setTimeout(() => child.kill(), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** spawnCli without blocking the event loop: for a launcher run against a server in this process. */
export function spawnCliAsync(
  args: string[],
  options: Omit<NonNullable<Parameters<typeof spawnNodeAsync>[2]>, 'env'> & { env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return spawnNodeAsync(LAUNCHER, args, { ...options, env: { PATH: process.env.PATH, ...options.env } });
}

export function tempDir(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'agm-test-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
