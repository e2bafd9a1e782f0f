import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { redactText, redactUri, secretsOf } from '../src/secrets.js';
import { spawnCli, tempDir } from './helpers/cli.js';

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
      /Error: Cannot reach MongoDB 127\.0\.0\.1:9\/agm(ission)? (\(.+\)|within [\d.]+ s); check --uri or MONGODB_URI/,
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
