import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { redactText, redactUri, redactValue, secretsOf } from '../../src/shared/secrets.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { assertNoFile } from '../helpers/assertions.js';
import { wirePeerBackend } from '../helpers/backends.js';
import { runCli, spawnCli, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

test('a URI is shown with its password masked', () => {
  assert.equal(
    redactUri('mongodb://ops:s3cr%40t@db1:27017,db2/agmission?replicaSet=rs0'),
    'mongodb://ops:****@db1:27017,db2/agmission?replicaSet=rs0',
  );
  assert.equal(
    redactText('failed for mongodb+srv://ops:pw@cluster/x'),
    'failed for mongodb+srv://ops:****@cluster/x',
  );
  assert.deepEqual(secretsOf('mongodb://ops:s3cr%40t@db1/x'), ['s3cr%40t', 's3cr@t']);
  assert.equal(
    redactText('auth s3cr@t failed', secretsOf('mongodb://ops:s3cr%40t@db1/x')),
    'auth **** failed',
  );
});

test('masking edge cases: an empty user, a one-letter or digit-ended user without a scheme, a secret with regex characters, twice', () => {
  assert.equal(redactText('failed: mongodb://:S3cret@h/db'), 'failed: mongodb://:****@h/db');
  assert.equal(redactText('u:pw@h'), 'u:****@h');
  assert.equal(redactText('login admin2:S3cret@db1 refused'), 'login admin2:****@db1 refused');
  assert.equal(redactText('bad pa$$w0rd.x given', ['pa$$w0rd.x']), 'bad **** given');
  assert.equal(
    redactText('paXXw0rdXx given', ['pa$$w0rd.x']),
    'paXXw0rdXx given',
    'regex characters are literal',
  );
  assert.equal(redactText('S3cretpw, then S3cretpw again', ['S3cretpw']), '****, then **** again');
  assert.equal(redactText('the west region', ['west']), 'the west region', 'a short secret as a bare word');
  assert.equal(redactText('Stryker was here'), 'Stryker was here', 'no secrets given, no words masked');
  assert.deepEqual(redactValue({ a: { b: ['mongodb://u:pw@h'] }, n: 1 }, []), {
    a: { b: ['mongodb://u:****@h'] },
    n: 1,
  });
});

test("a URI's password for the bare-word masking: none without an @, a colon, or a password", () => {
  assert.deepEqual(secretsOf('mongodb://host/db'), []);
  assert.deepEqual(secretsOf('mongodb://host:27017/db'), [], 'a port is no password');
  assert.deepEqual(secretsOf('mongodb://ops@host/db'), []);
  assert.deepEqual(secretsOf('mongodb://ops:@host/db'), []);
  assert.deepEqual(secretsOf('mongodb://:S3cret@host/db'), ['S3cret']);
  assert.deepEqual(secretsOf('mongodb://ops:S3c%40ret@host/db'), ['S3c%40ret', 'S3c@ret']);
  assert.deepEqual(secretsOf('ops:S3cret@host'), ['S3cret']);
  assert.deepEqual(secretsOf(undefined), []);
});

test('an unreachable server fails within seconds, names the host, and never shows the password', () => {
  const history = join(dir.path, 'history.json');
  const started = Date.now();
  const env = { DEBUG: 'agm:*', MONGODB_URI: 'mongodb://ops:Pa55w0rd-env@127.0.0.1:9/agmission' };
  const fromEnv = spawnCli(
    ['--sources', 'acme_west', '--destination', 'acme_corporate', '--output-file', history],
    { env },
  );
  const fromFlag = spawnCli(
    [
      '--preview',
      '--sources',
      'a',
      '--destination',
      'b',
      '--uri',
      'mongodb://ops:Pa55w0rd-flag@127.0.0.1:9/agm?serverSelectionTimeoutMS=1500',
    ],
    { env: { DEBUG: 'agm:*' } },
  );
  assert.ok(Date.now() - started < 20_000, 'both fail fast');
  for (const result of [fromEnv, fromFlag]) {
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /Error: Cannot reach MongoDB 127\.0\.0\.1:9\/agm(ission)? (within [\d.]+ s )?\(.*ECONNREFUSED.*\); check --uri or MONGODB_URI/,
    );
    assert.doesNotMatch(result.stdout + result.stderr, /Pa55w0rd/);
  }
  const records = JSON.parse(readFileSync(history, 'utf8'));
  assert.equal(records.length, 1, 'the failed execution is recorded; the preview is not');
  assert.equal(records[0].status, 'failed');
  assert.equal(records[0].target, 'MongoDB 127.0.0.1:9/agmission');
  assert.deepEqual(records[0].sources, []);
  assert.deepEqual(records[0].request, { sources: ['acme_west'], destination: 'acme_corporate' });
  assert.doesNotMatch(readFileSync(history, 'utf8'), /Pa55w0rd/);
});

test('a URI that does not parse is never echoed: the whole userinfo up to the last @ is masked, exit 2, no record', async () => {
  const history = join(dir.path, 'unparsed.json');
  for (const uri of [
    'mongodb://ops:Secr3t/pw@db1/agm',
    'mongodb://ops:Pa55@word@db1/agm',
    'mongodb://user:pass@host:port/dbname',
    'mongodb://ops:Secr3t@db1/agm?readPreference=bogus',
  ]) {
    for (const mode of [['--preview'], []]) {
      const result = await runCli([
        ...mode,
        '--sources',
        'acme_west',
        '--destination',
        'acme_corporate',
        '--uri',
        uri,
        '--output-file',
        history,
      ]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^Error: Invalid MongoDB URI mongodb:\/\/(ops|user):\*\*\*\*@/);
      assert.doesNotMatch(result.stdout + result.stderr, /Secr3t|\/pw@|Pa55|word@|:pass@/);
    }
  }
  assertNoFile(history);
});

test('masking never mangles ordinary output: a short password is masked only inside URIs, JSON stays JSON', async () => {
  assert.equal(redactText('acme_west moved', secretsOf('mongodb://ops:west@db/x')), 'acme_west moved');
  assert.equal(redactText('password longpassword1 here', ['longpassword1']), 'password **** here');
  assert.equal(redactText('x_longpassword1_y', ['longpassword1']), 'x_longpassword1_y', 'only whole words');
  assert.deepEqual(secretsOf('mongodb://ops:p@ss@db/x'), ['p@ss']);
  const file = join(dir.path, 'json.json');
  writeFileSync(file, serializeSnapshot(demoData()));
  const result = await runCli(
    ['--preview', '--json', '--sources', 'acme_west', '--destination', 'acme_corporate', '--snapshot', file],
    {
      env: { MONGODB_URI: 'mongodb://ops:1@db/agmission' },
    },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).plan.sources[0].username, 'acme_west');
});

test('a host name that does not resolve, or an SRV record, is an input error (exit 2) said plainly', async () => {
  for (const [uri, message] of [
    [
      'mongodb://ops:Pw123456@nonexistent.invalid/agm',
      /^Error: Cannot resolve host nonexistent\.invalid:27017 of MongoDB nonexistent\.invalid\/agm; check the host name \(through an ssh tunnel or a proxy, add directConnection=true to the URI\)/,
    ],
    [
      'mongodb+srv://ops:Pw123456@nonexistent.invalid/agm',
      /^Error: Cannot resolve the SRV record of MongoDB nonexistent\.invalid\/agm/,
    ],
  ] as const) {
    const history = join(dir.path, 'dns.json');
    const result = await runCli([
      '--sources',
      'a',
      '--destination',
      'b',
      '--uri',
      uri,
      '--output-file',
      history,
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
    assert.doesNotMatch(result.stderr, /Pw123456/);
    assertNoFile(history);
  }
});

/** Mistyped schemes (and none at all): each shown with its password masked, the user kept. */
const MISTYPED = [
  ['mongodb:/ops:S3cret-pw@host/agm', 'mongodb:/ops:****@host/agm'],
  ['mongodb//ops:S3cret-pw@host/agm', 'mongodb//ops:****@host/agm'],
  ['mongodb:ops:S3cret-pw@host/agm', 'mongodb:ops:****@host/agm'],
  ['ops:S3cret-pw@host/agm', 'ops:****@host/agm'],
] as const;

test('a URI with a mistyped scheme, or none, is masked like any other', () => {
  for (const [uri, shown] of MISTYPED) {
    assert.deepEqual(secretsOf(uri), ['S3cret-pw'], uri);
    assert.equal(redactText(`bad ${uri} here`), `bad ${shown} here`);
    assert.equal(redactUri(uri), shown);
  }
  assert.equal(redactText('see ops:pw@host'), 'see ops:****@host', 'a short one too, inside the URI');
  assert.deepEqual(secretsOf(' mongodb://ops:S3cret-pw@host/agm'), ['S3cret-pw']);
  assert.deepEqual(secretsOf('mongodb://ops@host/agm'), [], 'a user without a password');
  assert.equal(redactText('mongodb://ops@host/agm'), 'mongodb://ops@host/agm');
});

test('a mistyped URI never shows its password, from --uri or MONGODB_URI, in text or --json: exit 2, no record', async () => {
  const history = join(dir.path, 'mistyped.json');
  for (const [uri, shown] of MISTYPED) {
    for (const json of [[], ['--json']]) {
      for (const mode of [['--preview'], []]) {
        const args = [...mode, ...json, '--sources', 'acme_west', '--destination', 'acme_corporate'];
        const results = [
          await runCli([...args, '--uri', uri, '--output-file', history]),
          await runCli([...args, '--output-file', history], { env: { MONGODB_URI: uri } }),
        ];
        for (const result of results) {
          const output = result.stdout + result.stderr;
          assert.equal(result.code, 2, output);
          assert.ok(output.includes(`Invalid MongoDB URI ${shown}`), output);
          assert.doesNotMatch(output, /S3cret/);
          if (json.length > 0) assert.equal(JSON.parse(result.stdout).error.exitCode, 2);
        }
      }
    }
  }
  assertNoFile(history);
});

test('spaces around a pasted URI are not part of it: the run reaches the server', async () => {
  const peer = await wirePeerBackend('secrets');
  try {
    const loaded = await peer.load(demoData());
    const uri = loaded.args[1] as string;
    const args = ['--preview', '--sources', 'acme_west', '--destination', 'acme_corporate'];
    for (const result of [
      await runCli([...args, '--uri', ` ${uri} `]),
      await runCli(args, { env: { MONGODB_URI: ` ${uri}` } }),
    ]) {
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /Execution would proceed\./);
    }
  } finally {
    await peer.close();
  }
});
