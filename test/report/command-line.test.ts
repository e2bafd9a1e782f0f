import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { commandLine, passwordNote } from '../../src/report/command-line.js';
import { serializeSnapshot } from '../../src/store/snapshot.js';
import { wirePeerBackend } from '../helpers/backends.js';
import { type CliResult, runCli, shellWords, tempDir } from '../helpers/cli.js';
import { demoData } from '../helpers/data.js';

const dir = tempDir();
after(() => dir.remove());

/** Runs a command as printed (launcher and all), the way an operator pastes it. */
function paste(printed: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const [node, launcher, ...args] = shellWords(printed, env);
  assert.equal(`${node} ${launcher}`, 'node scripts/migrateCustomerData.js');
  return runCli(args, { env });
}

function hint(output: string, label: string): string {
  const line = output.split('\n').find((text) => text.startsWith(label));
  assert.ok(line, `no "${label}" line in:\n${output}`);
  return line.slice(label.length).trim();
}

test('the verify and rollback hints repeat the snapshot, --config and --output-file: pasted, they work', async () => {
  const snapshot = join(dir.path, 'rehearsal data.json');
  writeFileSync(snapshot, serializeSnapshot(demoData()));
  const config = join(dir.path, "the team's map.json");
  writeFileSync(config, '{}\n');
  const history = join(dir.path, 'trail', 'migrations 2025.json');
  const executed = await runCli([
    '--sources',
    'acme_west',
    '--destination',
    'acme_corporate',
    '--snapshot',
    snapshot,
    '--config',
    config,
    '--output-file',
    history,
  ]);
  assert.equal(executed.code, 0, executed.stderr);
  const verify = hint(executed.stdout, 'Check it:');
  assert.match(
    verify,
    /--snapshot '.*rehearsal data\.json' --config '.*the team'\\''s map\.json' --output-file '.*migrations 2025\.json'$/,
  );
  const checked = await paste(verify);
  assert.equal(checked.code, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, /All checks passed\./);
  const undo = await paste(hint(executed.stdout, 'Undo it:'));
  assert.equal(undo.code, 0, undo.stdout + undo.stderr);
  assert.match(undo.stdout, /Rollback would proceed\./);

  const undoArgs = shellWords(hint(executed.stdout, 'Undo it:'))
    .slice(2)
    .filter((word) => word !== '--preview');
  const rolledBack = await runCli(undoArgs);
  assert.equal(rolledBack.code, 0, rolledBack.stderr);
  const after = await paste(hint(rolledBack.stdout, 'Check it:'));
  assert.equal(after.code, 0, after.stdout + after.stderr);
  assert.match(after.stdout, /\(rolled_back\)/);
});

test('on a server: the URI (from --uri or MONGODB_URI) is repeated, and works when pasted', async () => {
  const peer = await wirePeerBackend('command-line');
  try {
    const uri = (await peer.load(demoData())).args[1] as string;
    const history = join(dir.path, 'server-history.json');
    const byOption = await runCli([
      '--sources',
      'acme_west',
      '--destination',
      'acme_corporate',
      '--uri',
      uri,
      '--output-file',
      history,
    ]);
    assert.equal(byOption.code, 0, byOption.stderr);
    assert.ok(hint(byOption.stdout, 'Check it:').includes(`--uri ${uri.includes('?') ? `'${uri}'` : uri}`));
    const checked = await paste(hint(byOption.stdout, 'Check it:'));
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);

    const env = { MONGODB_URI: uri };
    const byEnvironment = await runCli(
      ['--sources', 'acme_east', '--destination', 'acme_corporate', '--output-file', history],
      { env },
    );
    assert.equal(byEnvironment.code, 0, byEnvironment.stderr);
    const printed = hint(byEnvironment.stdout, 'Undo it:');
    assert.ok(printed.includes(`--uri ${uri.includes('?') ? `'${uri}'` : uri} --output-file `), printed);
    const previewed = await paste(printed, {});
    assert.equal(previewed.code, 0, 'the URI is repeated, so it works where MONGODB_URI is not set');
    assert.match(previewed.stdout, /Rollback would proceed\./);
  } finally {
    await peer.close();
  }
});

test('a password in the URI is never printed: the command reads the URI from MONGODB_URI and a note says so', () => {
  const place = {
    target: { kind: 'mongodb' as const, uri: 'mongodb://ops:S3cret-pw@db1:27017/agmission?replicaSet=rs0' },
    historyFile: '/var/log/agmission/h.json',
  };
  assert.equal(
    commandLine(['verify', 'abc'], place),
    'node scripts/migrateCustomerData.js verify abc --uri "$MONGODB_URI" --output-file /var/log/agmission/h.json',
  );
  assert.equal(
    passwordNote(place),
    'with MONGODB_URI set to the connection string used now (mongodb://ops:****@db1:27017/agmission?replicaSet=rs0): its password is never printed',
  );
  assert.equal(
    passwordNote({ ...place, target: { kind: 'mongodb', uri: 'mongodb://db1/agmission' } }),
    undefined,
  );
  assert.equal(
    commandLine(['verify'], {
      target: { kind: 'mongodb', uri: 'mongodb://127.0.0.1:27017/agmission' },
      historyFile: '/h.json',
    }),
    'node scripts/migrateCustomerData.js verify --uri mongodb://127.0.0.1:27017/agmission --output-file /h.json',
    'a URI without a password is repeated as it was used',
  );
});
