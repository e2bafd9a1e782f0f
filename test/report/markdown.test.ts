import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { assertNoFile, lastRecord } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

test('--preview --report writes the change-ticket Markdown, whose command runs exactly the reviewed plan', async () => {
  const snapshot = join(dir.path, 'agmission.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const bytes = readFileSync(snapshot);
  const report = join(dir.path, 'ticket.md');
  const history = join(dir.path, 'h.json');
  const args = [
    '--sources',
    'acme_aviation',
    '--destination',
    'consolidated_ag',
    '--merge-conflicts',
    '--snapshot',
    snapshot,
  ];
  const preview = await runCli(['--preview', ...args, '--output-file', history, '--report', report]);
  assert.equal(preview.code, 0, preview.stderr);
  assert.deepEqual(readFileSync(snapshot), bytes);
  assertNoFile(history);
  const markdown = readFileSync(report, 'utf8');
  const fingerprint = /Plan fingerprint: ([0-9a-f]{16})/.exec(preview.stdout)?.[1] as string;
  assert.match(markdown, /^# Customer data migration: acme_aviation into consolidated_ag\n/);
  assert.match(markdown, new RegExp(`- Plan fingerprint: \`${fingerprint}\``));
  assert.match(markdown, /\| source \| acme_aviation \| `507f1f77bcf86cd799439011` \| 4 \| 1 \|/);
  assert.match(markdown, /\| jobs \| client \| 6 \| 0 \| 0 \| merged account -> survivor \|/);
  assert.match(markdown, /1\. "john_farmer": incoming john_farmer 507f1f77bcf86cd799439015/);
  assert.match(markdown, /will be resolved: merge: 507f1f77bcf86cd799439015 is marked deleted/);
  assert.match(
    markdown,
    /## Actions on execute \(one transaction\)\n\n1\. jobs\.client: re-point merged accounts/,
  );
  const command = /```sh\n([\s\S]*?)\n```/.exec(markdown)?.[1] as string;
  assert.match(
    command,
    new RegExp(
      `\\n  --snapshot ${snapshot} \\\\\n  --output-file ${history} \\\\\n  --expect-plan ${fingerprint}$`,
    ),
  );

  const argv = command
    .replace(/\\\n\s*/g, ' ')
    .split(' ')
    .filter(Boolean)
    .slice(2);
  const executed = await runCli(argv);
  assert.equal(executed.code, 0, executed.stderr);
  assert.equal(lastRecord(history).planFingerprint, fingerprint);
});

test('a blocked preview report says why and offers no command to run', async () => {
  const snapshot = join(dir.path, 'blocked.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const report = join(dir.path, 'blocked.md');
  const preview = await runCli([
    '--preview',
    '--sources',
    'acme_aviation',
    '--destination',
    'consolidated_ag',
    '--snapshot',
    snapshot,
    '--report',
    report,
  ]);
  assert.equal(preview.code, 3);
  const markdown = readFileSync(report, 'utf8');
  assert.match(markdown, /- Verdict: \*\*BLOCKED\*\*/);
  assert.match(
    markdown,
    /## Blocked\n\n- 2 username conflict\(s\); rename the accounts first, or re-run with --merge-conflicts/,
  );
  assert.doesNotMatch(markdown, /--expect-plan|## Actions on execute/);
  assert.doesNotMatch(preview.stdout, /--expect-plan|Actions on execute/);
});

test('--preview --report of a run with nothing left to move says so, with no actions and no command to run', async () => {
  const snapshot = join(dir.path, 'done.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const history = join(dir.path, 'done-history.json');
  const args = ['--sources', 'acme_west', '--destination', 'acme_corporate', '--snapshot', snapshot];
  assert.equal((await runCli([...args, '--output-file', history])).code, 0);
  const migration = lastRecord(history);
  const report = join(dir.path, 'done.md');
  const preview = await runCli(['--preview', ...args, '--output-file', history, '--report', report]);
  assert.equal(preview.code, 0, preview.stderr);
  const markdown = readFileSync(report, 'utf8');
  assert.match(
    markdown,
    new RegExp(`- Verdict: Nothing to do: migration ${migration.id} already moved these sources at `),
  );
  assert.match(markdown, /## Nothing to do\n/);
  assert.doesNotMatch(markdown, /## Actions on execute|## Command to execute|--expect-plan/);
});
