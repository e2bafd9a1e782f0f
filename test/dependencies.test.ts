import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../src/cli/options.js';

/** Every installed copy of a package, wherever npm put it. */
function copiesOf(name: string, dir = join(PROJECT_ROOT, 'node_modules')): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(dir, entry.name);
    if (entry.name.startsWith('@')) {
      found.push(...copiesOf(name, path));
      continue;
    }
    if (entry.name === name && existsSync(join(path, 'package.json'))) {
      found.push(`${path}@${JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')).version}`);
    }
    found.push(...copiesOf(name, join(path, 'node_modules')));
  }
  return found;
}

test('exactly one bson in the tree: mingo compares ObjectIds by constructor, two copies silently never match', () => {
  const copies = copiesOf('bson');
  assert.equal(copies.length, 1, `bson copies: ${copies.join(', ')}`);
  assert.equal(copiesOf('mongodb').length, 1, 'one driver, shared with mongodb-memory-server-core');
});
