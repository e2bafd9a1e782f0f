import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { lastRecord } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

test('after --skip-invoices, verify reports the invoices left with the source as SKIPPED with their count, never as passing', async () => {
  const snapshot = join(dir.path, 'skip.json');
  const data = demoData();
  writeFileSync(snapshot, serializeSnapshot(data));
  const leftBehind = (data.get('invoices') ?? []).filter(
    (i) => String(i.customer) === IDS.regional_ag,
  ).length;
  assert.ok(leftBehind > 0, 'the source has invoices');
  const history = join(dir.path, 'skip.history.json');
  const place = ['--snapshot', snapshot, '--output-file', history];
  const migrated = await runCli([
    '--sources',
    'regional_ag',
    '--destination',
    'consolidated_ag',
    '--skip-invoices',
    ...place,
  ]);
  assert.equal(migrated.code, 0, migrated.stderr);
  const id = lastRecord(history).id;
  const bytes = readFileSync(snapshot);

  const text = await runCli(['verify', id, ...place]);
  assert.equal(text.code, 0, text.stdout + text.stderr);
  assert.match(
    text.stdout,
    /\n {2}PASS {2}nothing left behind: no other mapped field references a source or a merged account\n/,
  );
  assert.match(
    text.stdout,
    new RegExp(
      `\\n {2}SKIP {2}left with the sources \\(--skip-invoices\\): invoices\\.customer: ${leftBehind} document\\(s\\) still reference a source or merged account, as asked; not checked\\n`,
    ),
  );
  assert.match(
    text.stdout,
    /PASS {2}invoices\.customer under the destination: [^\n]*\(the destination's own: --skip-invoices kept the sources' with them\)/,
  );
  assert.match(text.stdout, /All checks passed\. 1 check\(s\) SKIPPED \(not a pass\)\.\n$/);

  const json = await runCli(['verify', id, '--json', ...place]);
  const { passed, checks } = JSON.parse(json.stdout);
  assert.equal(passed, true);
  const skipped = checks.filter((c: { skipped?: boolean }) => c.skipped);
  assert.equal(skipped.length, 1);
  assert.equal(skipped[0].passed, false, 'a skipped check does not pass');
  assert.deepEqual(readFileSync(snapshot), bytes, 'verify only reads');
});

test('without --skip-invoices there is nothing to skip', async () => {
  const snapshot = join(dir.path, 'all.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const place = ['--snapshot', snapshot];
  const migrated = await runCli(['--sources', 'regional_ag', '--destination', 'consolidated_ag', ...place]);
  assert.equal(migrated.code, 0, migrated.stderr);
  const verified = await runCli(['verify', ...place]);
  assert.equal(verified.code, 0, verified.stdout);
  assert.match(verified.stdout, /PASS {2}nothing left behind: no mapped field references a source/);
  assert.doesNotMatch(verified.stdout, /SKIP/);
  assert.match(verified.stdout, /All checks passed\.\n$/);
});
