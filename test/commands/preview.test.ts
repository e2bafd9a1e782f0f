import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

/** A preview says "would proceed" only when execute would: it runs execute's checks, and writes nothing. */
test('a preview shows the refusals execute would meet (corrupt history, held locks), with execute’s exit code', async () => {
  const snapshot = join(dir.path, 'agmission.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const bytes = readFileSync(snapshot);
  const history = join(dir.path, 'history.json');
  const preview = () =>
    runCli([
      '--preview',
      '--sources',
      'acme_west',
      '--destination',
      'acme_corporate',
      '--snapshot',
      snapshot,
      '--output-file',
      history,
    ]);

  writeFileSync(history, '{"not": "an array"}');
  const corrupt = await preview();
  assert.equal(corrupt.code, 2, corrupt.stderr);
  assert.match(corrupt.stdout, /Documents to re-point/, 'the plan is still shown');
  assert.match(
    corrupt.stdout,
    /Execution would be BLOCKED:\n {2}- History file .*history\.json is not a JSON array/,
  );
  assert.doesNotMatch(corrupt.stdout, /Execution would proceed|--expect-plan/);
  assert.equal(readFileSync(history, 'utf8'), '{"not": "an array"}');

  writeFileSync(history, '[]');
  writeFileSync(`${history}.lock`, 'pid 42 on ops-host since 2026-11-25T00:00:00.000Z\n');
  writeFileSync(`${snapshot}.lock`, 'pid 43 on ops-host since 2026-11-25T00:00:00.000Z\n');
  const locked = await preview();
  assert.equal(locked.code, 1, locked.stderr);
  assert.match(
    locked.stdout,
    /- Another migration is running \(lock .*history\.json\.lock: pid 42 on ops-host/,
  );
  assert.match(
    locked.stdout,
    /- Another migration is running \(lock .*agmission\.json\.lock: pid 43 on ops-host/,
  );
  assert.equal(
    readFileSync(`${history}.lock`, 'utf8'),
    'pid 42 on ops-host since 2026-11-25T00:00:00.000Z\n',
  );
  assert.deepEqual(readFileSync(snapshot), bytes);
});
