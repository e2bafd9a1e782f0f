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

test('on a server: --uri is repeated, MONGODB_URI is named, and either works when pasted', async () => {
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
    assert.match(printed, /--uri "\$MONGODB_URI" --output-file /);
    const previewed = await paste(printed, env);
    assert.equal(previewed.code, 0, previewed.stdout + previewed.stderr);
    assert.match(previewed.stdout, /Rollback would proceed\./);
    const unset = await paste(printed, {});
    assert.equal(unset.code, 2, 'pasted where MONGODB_URI is unset, it is refused, never the default server');
  } finally {
    await peer.close();
  }
});

test('a password given in --uri is masked in every printed command, which says how to run it', () => {
  const place = {
    target: { kind: 'mongodb' as const, uri: 'mongodb://ops:S3cret-pw@db1:27017/agmission?replicaSet=rs0' },
    uriOption: true,
    historyFile: '/var/log/agmission/h.json',
  };
  assert.equal(
    commandLine(['verify', 'abc'], place),
    "node scripts/migrateCustomerData.js verify abc --uri 'mongodb://ops:****@db1:27017/agmission?replicaSet=rs0' --output-file /var/log/agmission/h.json",
  );
  assert.match(
    passwordNote(place) ?? '',
    /the password in --uri is masked \(\*\*\*\*\): put it back, or export MONGODB_URI/,
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
    'node scripts/migrateCustomerData.js verify --output-file /h.json',
    'the default URI is the default again when pasted',
  );
});
