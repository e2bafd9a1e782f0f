#!/usr/bin/env node
// The entry point the operations guide uses. It runs the compiled TypeScript, which `npm install` builds
// through the `prepare` script; without a build it says how to make one instead of crashing.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  process.stderr.write(
    `The migration tool is not built: run \`npm install\` (or \`npm run build\`) in ${root}\n`,
  );
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
