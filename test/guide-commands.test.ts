import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PROJECT_ROOT } from '../src/cli/options.js';
import { serializeSnapshot } from '../src/store/snapshot.js';
import { runCli, tempDir } from './helpers/cli.js';
import { demoData } from './helpers/data.js';

const GUIDE = join(PROJECT_ROOT, 'docs', 'customer-data-migration-quick-reference.txt');
const LAUNCHER = 'node scripts/migrateCustomerData.js';

/** Every command of the guide that can run as written (no `...`, no `<SOURCE_ID1>`), as its arguments. */
function guideCommands(): string[] {
  const lines = readFileSync(GUIDE, 'utf8').split('\n');
  const commands: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (!lines[i]?.startsWith(LAUNCHER)) continue;
    let text = lines[i] as string;
    while (text.endsWith('\\') && i + 1 < lines.length) {
      i += 1;
      text = `${text.slice(0, -1).trimEnd()} ${(lines[i] as string).trim()}`;
    }
    const args = text.slice(LAUNCHER.length).trim();
    if (!args.includes('...') && !args.includes('<')) commands.push(args);
  }
  return [...new Set(commands)];
}

/** The README's table of what each of them does on the demo data: arguments -> exit code. */
function documentedOutcomes(): Map<string, number> {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| `((?:--|verify|history|rollback)[^`]*)` \| (\d) \|/gm)];
  return new Map(rows.map(([, args, code]) => [args as string, Number(code)]));
}

const dir = tempDir();
after(() => dir.remove());

test('every guide command that can run as written runs on the demo data with the outcome the README gives it', async () => {
  const commands = guideCommands();
  assert.ok(commands.length >= 10, `the guide's commands were found (${commands.length})`);
  const documented = documentedOutcomes();
  let runs = 0;
  for (const command of commands) {
    const expected = documented.get(command);
    assert.ok(expected !== undefined, `the README says what \`${command}\` does on the demo data`);
    runs += 1;
    const snapshot = join(dir.path, `demo-${runs}.json`);
    writeFileSync(snapshot, serializeSnapshot(demoData()));
    const history = join(dir.path, `history-${runs}`, 'migration_history.json');
    // The guide's own --output-file (/var/log/...) is moved into the test's folder; every other word is as written.
    const words = command.split(/\s+/);
    const at = words.indexOf('--output-file');
    if (at >= 0) words.splice(at, 2);
    const result = await runCli([...words, '--snapshot', snapshot, '--output-file', history]);
    assert.equal(result.code, expected, `${command}\n${result.stderr}`);
    if (at >= 0 && !words.includes('--preview'))
      assert.ok(existsSync(history), 'the history went where asked');
  }
});
