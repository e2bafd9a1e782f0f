import { parseArgs } from 'node:util';
import { type BackendName, isBackendName } from './backends/index.js';

export const USAGE =
  'usage: node dist/bench/run.js [--backend snapshot|mongo|peer|dump] [--large] [--sizes 1000,10000] [--baseline-max N] [--download]';
const DEFAULT_SIZES = [1_000, 10_000, 100_000];
const LARGE_SIZE = 1_000_000;

export interface BenchArgs {
  backend: BackendName;
  sizes: number[];
  /** Undefined: the back end's own limit. */
  baselineMax?: number;
  download: boolean;
}

/** The bench's command line; throws an Error whose message says what is wrong with it. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'snapshot' },
      large: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      'baseline-max': { type: 'string' },
      download: { type: 'boolean', default: false },
    },
  });
  const backend = values.backend;
  if (!isBackendName(backend))
    throw new Error(`--backend must be snapshot, mongo, peer or dump, not ${backend}`);
  const sizes = values.sizes
    ? values.sizes.split(',').map((size) => Number(size.trim()))
    : [...DEFAULT_SIZES, ...(values.large ? [LARGE_SIZE] : [])];
  if (sizes.some((size) => !Number.isInteger(size) || size < 1)) {
    throw new Error('--sizes must be positive integers separated by commas');
  }
  const baselineMax = values['baseline-max'] === undefined ? undefined : Number(values['baseline-max']);
  if (Number.isNaN(baselineMax)) throw new Error('--baseline-max must be a number');
  return { backend, sizes, download: values.download, ...(baselineMax === undefined ? {} : { baselineMax }) };
}
