import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Document, ObjectId } from 'mongodb';
import { parseSnapshot, serializeSnapshot } from '../../src/store/snapshot.js';
import { lastRecord } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { type Collections, demoData, IDS, oid } from '../helpers/data.js';

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

/** acme_west and acme_east merged into acme_corporate on a snapshot, and a way to edit the data behind it. */
async function migratedSnapshot(name: string) {
  const snapshot = join(dir.path, `${name}.json`);
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const history = join(dir.path, `${name}.history.json`);
  const place = ['--snapshot', snapshot, '--output-file', history];
  const migrated = await runCli([
    '--sources',
    'acme_west,acme_east',
    '--destination',
    'acme_corporate',
    ...place,
  ]);
  assert.equal(migrated.code, 0, migrated.stderr);
  const id = lastRecord(history).id;
  const passing = await runCli(['verify', id, ...place]);
  assert.equal(passing.code, 0, passing.stdout);
  return {
    id,
    place,
    /** Changes the data behind the tool's back, as an application or an operator would. */
    edit(change: (collections: Collections) => void) {
      const collections = parseSnapshot(readFileSync(snapshot, 'utf8'), snapshot);
      change(collections);
      writeFileSync(snapshot, serializeSnapshot(collections));
    },
  };
}

const byHex = (documents: Document[] | undefined, hex: string): Document => {
  const found = (documents ?? []).find((document) => String(document._id) === hex);
  assert.ok(found, `no document ${hex}`);
  return found;
};

/** verify fails (exit 6) on exactly the named checks. */
async function failsOn(args: string[], failing: RegExp[]): Promise<void> {
  const result = await runCli(['verify', ...args]);
  assert.equal(result.code, 6, result.stdout + result.stderr);
  const lines = result.stdout.split('\n').filter((line) => line.startsWith('  FAIL  '));
  assert.equal(lines.length, failing.length, lines.join('\n'));
  for (const [index, pattern] of failing.entries()) assert.match(lines[index] ?? '', pattern);
  assert.match(result.stdout, new RegExp(`${failing.length} check\\(s\\) FAILED\\.\\n$`));
}

test('a source with active: false but no markedDelete: true is not deactivated: verify fails on it', async () => {
  const { id, place, edit } = await migratedSnapshot('half-deactivated');
  edit((collections) => {
    byHex(collections.get('users'), IDS.acme_west).markedDelete = false;
  });
  await failsOn(
    [id, ...place],
    [/^ {2}FAIL {2}sources: acme_west: not deactivated \(active: false, markedDelete: true\)$/],
  );
});

test('a soft-deleted document added under the destination changes its soft-deleted count: verify fails on it', async () => {
  const { id, place, edit } = await migratedSnapshot('soft-deleted');
  edit((collections) => {
    collections
      .get('jobs')
      ?.push({ _id: new ObjectId(), byPuid: oid(IDS.acme_corporate), markedDelete: true });
  });
  await failsOn(
    [id, ...place],
    [/^ {2}FAIL {2}jobs\.byPuid under the destination: (\d+) live \+ 1 soft-deleted; expected \1 \+ 0 /],
  );
});

test("a source's id left as a hex string: verify fails on nothing left behind", async () => {
  const { id, place, edit } = await migratedSnapshot('hex-leftover');
  edit((collections) => {
    collections.get('jobs')?.push({ _id: new ObjectId(), byPuid: IDS.acme_west, markedDelete: false });
  });
  await failsOn(
    [id, ...place],
    [/^ {2}FAIL {2}nothing left behind: still referencing a source or merged account: jobs\.byPuid: 1 /],
  );
});

test('a moved document moved again since (to another customer): verify fails on the moved documents', async () => {
  const { id, place, edit } = await migratedSnapshot('moved-again');
  const moved = (demoData().get('jobs') ?? []).find((job) => String(job.byPuid) === IDS.acme_west);
  assert.ok(moved);
  edit((collections) => {
    const job = byHex(collections.get('jobs'), String(moved._id));
    assert.equal(String(job.byPuid), IDS.acme_corporate, 'the migration moved it');
    job.byPuid = oid(IDS.valley_sprayers);
  });
  const result = await runCli(['verify', id, ...place]);
  assert.equal(result.code, 6, result.stdout);
  assert.match(
    result.stdout,
    new RegExp(`\\n {2}FAIL {2}moved documents: 1 of \\d+ no longer do: jobs ${String(moved._id)} \\(`),
  );
});

test("a rolled-back migration still recorded on the destination: verify fails on the destination's mark", async () => {
  const { id, place, edit } = await migratedSnapshot('marked-again');
  const rolledBack = await runCli(['rollback', id, ...place]);
  assert.equal(rolledBack.code, 0, rolledBack.stdout + rolledBack.stderr);
  const passing = await runCli(['verify', id, ...place]);
  assert.equal(passing.code, 0, passing.stdout);
  edit((collections) => {
    byHex(collections.get('users'), IDS.acme_corporate).migrationsReceived = [id];
  });
  await failsOn([id, ...place], [/^ {2}FAIL {2}destination: still records the migration$/]);
});
