import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Access, Method } from './backends/index.js';
import type { Measured } from './baseline.js';

/** One row of the results: a measured run, or why there is none. */
export interface Run {
  backend: string;
  n: number;
  method: Method;
  commands?: number;
  seconds?: number;
  docsPerSecond?: number;
  modified?: number;
  chunks?: number;
  peakRssMiB?: number;
  error?: string;
  skipped?: string;
}

const MEASURE_SCRIPT = fileURLToPath(new URL('./measure.js', import.meta.url));

/** Runs measure.js in a child process, so that the peak RSS it reports is the run's own. */
export function inChild(
  label: string,
  access: Access,
  method: Method,
  n: number,
  target: string,
): Promise<Run> {
  const child = fork(MEASURE_SCRIPT, [access, method, String(n), target], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  return new Promise((resolve) => {
    child.on('error', (error) =>
      resolve({ backend: label, n, method, error: `cannot start: ${error.message}` }),
    );
    child.on('close', (code, signal) => {
      const run: Run = { backend: label, n, method };
      const line = stdout.trim().split('\n').at(-1) ?? '';
      let reply: (Measured & { peakRssMiB: number }) | { error: string } | undefined;
      try {
        reply = JSON.parse(line);
      } catch {
        reply = undefined;
      }
      if (code === 0 && reply && !('error' in reply)) {
        resolve({
          ...run,
          commands: reply.commands,
          seconds: reply.seconds,
          docsPerSecond: reply.modified / reply.seconds,
          modified: reply.modified,
          peakRssMiB: reply.peakRssMiB,
          ...(reply.chunks === undefined ? {} : { chunks: reply.chunks }),
        });
      } else {
        const exit = signal ?? `code ${code}`;
        resolve({ ...run, error: reply && 'error' in reply ? reply.error : `child exited with ${exit}` });
      }
    });
  });
}
