import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ObjectId } from 'mongodb';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { assertNoFile } from '../helpers/assertions.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { buildData, demoData, IDS } from '../helpers/data.js';

/** Every refusal: exit 2, one line naming the problem and what to do, and not a byte changed anywhere. */
describe('input errors', () => {
  const dir = tempDir();
  after(() => dir.remove());
  const snapshot = join(dir.path, 'agmission.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const bytes = readFileSync(snapshot);
  const history = join(dir.path, 'history.json');

  async function refused(args: string[], message: RegExp, extra: string[] = ['--snapshot', snapshot]) {
    for (const mode of [['--preview'], []]) {
      const result = await runCli([...mode, ...args, ...extra, '--output-file', history]);
      assert.equal(result.code, 2, `${mode.join(' ')} ${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(
        result.stderr.trim().split('\n')[0]?.startsWith('Error: ') || result.stderr.startsWith('error: '),
        true,
      );
      assert.equal(result.stdout, '');
      assert.deepEqual(readFileSync(snapshot), bytes, 'the data file is unchanged');
      assertNoFile(history);
      assertNoFile(`${history}.lock`);
    }
  }

  test('every missing source is named', () =>
    refused(
      ['--sources', 'nobody,acme_west,ghost_co', '--destination', 'acme_corporate'],
      /^Error: Source customer\(s\) not found: nobody, ghost_co; /,
    ));

  test('a missing destination is named', () =>
    refused(
      ['--sources', 'acme_west', '--destination', 'nowhere_inc'],
      /^Error: Destination customer not found: nowhere_inc; /,
    ));

  test('a missing id is reported like a missing username', () =>
    refused(
      ['--sources', 'acme_west', '--destination', '0123456789abcdef01234567'],
      /Destination customer not found: 0123456789abcdef01234567/,
    ));

  test('a sub-account given as a source says what kind it is', () =>
    refused(
      ['--sources', 'pilot_sara', '--destination', 'consolidated_ag'],
      /Source pilot_sara is not a customer: it is a sub-account \(kind '5'\) under customer 507f1f77bcf86cd799439012; give a kind '1' customer/,
    ));

  test('a sub-account id given as the destination says what kind it is', () =>
    refused(
      ['--sources', 'acme_west', '--destination', IDS.john_farmer],
      /Destination 507f1f77bcf86cd799439015 is not a customer: it is a sub-account \(kind '3'\)/,
    ));

  test('an already deactivated source is refused', () =>
    refused(
      ['--sources', 'old_farms', '--destination', 'acme_corporate'],
      /Source customer old_farms \(5a1b2c3d4e5f60718293a4b5\) is already deactivated \(markedDelete: true\)/,
    ));

  test('an already deactivated destination is refused', () =>
    refused(
      ['--sources', 'acme_west', '--destination', IDS.old_farms],
      /Destination customer old_farms .* already deactivated/,
    ));

  test('the destination among the sources is refused', () =>
    refused(
      ['--sources', 'acme_west,acme_corporate', '--destination', IDS.acme_corporate],
      /Destination 5f0c0a000000000000000100 is also listed in --sources \(as acme_corporate\)/,
    ));

  test('the same customer twice, by name and by id, is refused', () =>
    refused(
      ['--sources', `acme_aviation,${IDS.acme_aviation.toUpperCase()}`, '--destination', 'consolidated_ag'],
      /Customer acme_aviation \(507f1f77bcf86cd799439011\) is given twice in --sources \(as acme_aviation and 507F1F77BCF86CD799439011\)/,
    ));

  test('an empty list, an empty token and an empty destination are refused at parse time', async () => {
    await refused(
      ['--sources', '', '--destination', 'acme_corporate'],
      /option '--sources <list>' argument '' is invalid\. it is empty; give a value to --sources/,
    );
    await refused(['--sources', 'acme_west,,acme_east', '--destination', 'acme_corporate'], /empty entry/);
    await refused(
      ['--sources', 'acme_west', '--destination', ' '],
      /--destination <ref>' argument ' ' is invalid\. it is empty/,
    );
    await refused(['--sources', 'acme_west', '--destination', 'a,b'], /exactly one destination/);
  });

  test('missing options, unknown options and stray arguments are usage errors', async () => {
    await refused(['--sources', 'acme_west'], /required option '--destination <ref>' not specified/);
    await refused(['--destination', 'acme_corporate'], /required option '--sources <list>' not specified/);
    await refused(
      ['--sources', 'acme_west', '--destination', 'acme_corporate', '--merge-conflict'],
      /unknown option '--merge-conflict'/,
    );
    await refused(
      ['--sources', 'acme_west', '--destination', 'acme_corporate', 'extra'],
      /too many arguments/,
    );
  });

  test('--uri and --snapshot together are refused', () =>
    refused(
      ['--sources', 'acme_west', '--destination', 'acme_corporate', '--uri', 'mongodb://127.0.0.1:1/x'],
      /option '--snapshot <file>' cannot be used with option '--uri <mongodb-uri>'/,
    ));

  test('usernames are literals, never patterns or operators', async () => {
    await refused(
      ['--sources', '.*', '--destination', 'acme_corporate'],
      /Source customer\(s\) not found: \.\*/,
    );
    await refused(
      ['--sources', '{"$ne":null}', '--destination', 'acme_corporate'],
      /not found: \{"\$ne":null\}/,
    );
    await refused(['--sources', 'ACME_WEST', '--destination', 'acme_corporate'], /not found: ACME_WEST/);
  });

  test('missing sources and destination are named in one message, each with what was probably meant', () =>
    refused(
      ['--sources', 'acme_wset,ACME_EAST,nobody_at_all', '--destination', 'acme_corprate'],
      /^Error: Source customer\(s\) not found: acme_wset \(did you mean acme_west\?\), ACME_EAST \(did you mean acme_east[^)]*\?\), nobody_at_all; Destination customer not found: acme_corprate \(did you mean acme_corporate\?\); check the usernames\/ids/,
    ));

  test('usernames with edge spaces or invisible characters are shown quoted and escaped', async () => {
    const { data } = buildData({ 'acme_west ': [], 'zero\u200bwidth': [], dest: [] });
    const file = join(dir.path, 'odd-names.json');
    writeFileSync(file, serializeSnapshot(data));
    const result = await runCli([
      '--preview',
      '--sources',
      'acme_west,zerowidth',
      '--destination',
      'dest',
      '--snapshot',
      file,
    ]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /not found: acme_west \(did you mean "acme_west "\?\), zerowidth \(did you mean "zero\\u200bwidth"\?\)/,
    );
  });

  test('a kind stored as a number is explained', async () => {
    const { data } = buildData({ dest: [] });
    data.get('users')?.push({ _id: new ObjectId(), username: 'numeric_co', kind: 1, active: true });
    const file = join(dir.path, 'numeric-kind.json');
    writeFileSync(file, serializeSnapshot(data));
    const result = await runCli([
      '--preview',
      '--sources',
      'numeric_co',
      '--destination',
      'dest',
      '--snapshot',
      file,
    ]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /Source numeric_co is not a customer: it is an account whose kind is 1, stored as a number rather than a string; customers have the string '1'; give a kind '1' customer/,
    );
  });

  test('a username shared by two customers must be given by id', async () => {
    const { data } = buildData({ twin: [], other: [], dest: [] });
    const users = data.get('users') ?? [];
    const twinFile = join(dir.path, 'twins.json');
    (users[1] as { username: string }).username = 'twin';
    writeFileSync(twinFile, serializeSnapshot(data));
    const result = await runCli([
      '--preview',
      '--sources',
      'twin',
      '--destination',
      'dest',
      '--snapshot',
      twinFile,
    ]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /Source twin matches 2 customers \([0-9a-f]{24}, [0-9a-f]{24}\); give the id instead/,
    );
  });

  test('a history file that is not a JSON array is refused before anything runs, and left as it was', async () => {
    const bad = join(dir.path, 'not-an-array.json');
    writeFileSync(bad, '{"oops": true}\n');
    const result = await runCli([
      '--sources',
      'acme_west',
      '--destination',
      'acme_corporate',
      '--snapshot',
      snapshot,
      '--output-file',
      bad,
    ]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /History file .*not-an-array\.json is not a JSON array; move it aside or choose another --output-file/,
    );
    assert.equal(readFileSync(bad, 'utf8'), '{"oops": true}\n');
    assert.deepEqual(readFileSync(snapshot), bytes);
  });

  test('an invalid --config map is refused with what is wrong', async () => {
    const config = join(dir.path, 'map.json');
    writeFileSync(config, JSON.stringify({ customerRefs: { jobs: ['byPuid'] } }));
    await refused(
      ['--sources', 'acme_west', '--destination', 'acme_corporate', '--config', config],
      /Invalid reference map in .*map\.json: customerRefs\.users must include "parent"/,
    );
    writeFileSync(config, JSON.stringify({ accountRef: {} }));
    await refused(
      ['--sources', 'acme_west', '--destination', 'acme_corporate', '--config', config],
      /unknown key\(s\) accountRef/,
    );
    await refused(
      [
        '--sources',
        'acme_west',
        '--destination',
        'acme_corporate',
        '--config',
        join(dir.path, 'missing.json'),
      ],
      /Cannot read --config/,
    );
  });

  test('a missing or malformed snapshot file is an input error', async () => {
    await refused(
      ['--sources', 'acme_west', '--destination', 'acme_corporate'],
      /Cannot read snapshot .*missing\.json: ENOENT/,
      ['--snapshot', join(dir.path, 'missing.json')],
    );
    const broken = join(dir.path, 'broken.json');
    writeFileSync(broken, '[1, 2]');
    await refused(
      ['--sources', 'acme_west', '--destination', 'acme_corporate'],
      /must be an object of collections/,
      ['--snapshot', broken],
    );
  });

  test('tokens are trimmed: " acme_west , acme_east " works', async () => {
    const result = await runCli([
      '--preview',
      '--sources',
      ' acme_west , acme_east ',
      '--destination',
      ' acme_corporate ',
      '--snapshot',
      snapshot,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /acme_west\s+5f0c0a000000000000000101/);
  });

  test('--help lists every option and the exit codes, and exits 0', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    for (const option of [
      '--preview',
      '--sources',
      '--destination',
      '--merge-conflicts',
      '--convert-to-admin',
      '--skip-invoices',
      '--output-file',
      '--uri',
      '--snapshot',
      '--config',
      '--json',
      '--expect-plan',
    ]) {
      assert.ok(result.stdout.includes(option), `help mentions ${option}`);
    }
    assert.match(result.stdout, /Exit codes:\n\s+0 .*\n\s+1 .*\n\s+2 .*\n\s+3 /);
  });
});
