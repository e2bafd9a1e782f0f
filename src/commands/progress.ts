import { duration } from '../report/report.js';
import type { Output } from '../shared/output.js';

/**
 * A phase shorter than this prints nothing (so a refusal stays one line, and a small run prints as it always
 * did; the first contact with a server is bounded at 5 s); a longer one says what it is doing, and keeps saying
 * it: never more than 10 s of silence.
 */
const QUIET_MS = 6_000;
const EVERY_MS = 10_000;

/**
 * Runs one phase of a command (opening a large snapshot, planning, the transaction, counting afterwards) so
 * that a long one is never silent: past QUIET_MS it prints what it is doing, again every EVERY_MS, and when it
 * ends (or fails), with its duration. Short phases, the usual case, print nothing.
 */
export async function phase<T>(output: Output, label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  let said = false;
  const tick = () => {
    said = true;
    output.progress(`${label}... (${duration(Date.now() - started)} so far)`);
    timer = setTimeout(tick, EVERY_MS).unref();
  };
  let timer = setTimeout(tick, QUIET_MS).unref();
  let outcome = 'failed after';
  try {
    const result = await work();
    outcome = 'done in';
    return result;
  } finally {
    clearTimeout(timer);
    if (said) output.progress(`${label}: ${outcome} ${duration(Date.now() - started)}`);
  }
}
