import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BSON, type Document } from 'mongodb';
import { lastRecord } from '../helpers/assertions.js';
import { type Backend, dumpBackend, snapshotBackend, wirePeerBackend } from '../helpers/backends.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { demoData, IDS } from '../helpers/data.js';

/**
 * The same data on every offline back end and on the wire peer: the same plan (fingerprint), the same documents
 * after execute, and the data as it was after rollback. A backup's preview is compared with production's by
 * that fingerprint, so a back end that read a value differently would make the comparison lie.
 */
const SCENARIOS: string[][] = [
  ['--sources', 'acme_west', '--destination', 'acme_corporate'],
  ['--sources', 'acme_west,acme_east,acme_south', '--destination', 'acme_corporate', '--convert-to-admin'],
  ['--sources', 'acme_aviation', '--destination', 'consolidated_ag', '--merge-conflicts'],
  ['--sources', IDS.regional_ag, '--destination', IDS.consolidated_ag, '--skip-invoices'],
];

const dir = tempDir();
const backends: Backend[] = [
  snapshotBackend(),
  dumpBackend(),
  dumpBackend({ gzip: true }),
  await wirePeerBackend('agree'),
];
after(async () => {
  for (const backend of backends) await backend.close();
  dir.remove();
});

/**
 * The business collections with what differs between two runs (the run's id, the clock) replaced by names. The
 * test helper reads a server's documents through the driver, which makes every number a JS number: relaxed
 * there (the offline back ends are also compared with their number types, canonical).
 */
function normalized(collections: Record<string, Document[]>, migrationId: string, relaxed: boolean): string {
  const text = BSON.EJSON.stringify(
    { users: collections.users, jobs: collections.jobs, invoices: collections.invoices },
    { relaxed },
  );
  return text
    .replaceAll(migrationId, '<migration>')
    .replace(/\{"\$date":(\{"\$numberLong":"-?\d+"\}|"[^"]+")\}/g, '"<date>"');
}

let runs = 0;

test('snapshot, dump, gzip dump and wire peer: one fingerprint per plan, the same documents after execute, the original ones after rollback', async () => {
  for (const args of SCENARIOS) {
    const fingerprints = new Map<string, string>();
    const executed = new Map<string, string>();
    const originals = new Map<boolean, string>();
    for (const backend of backends) {
      const relaxed = backend.name === 'wire peer';
      const loaded = await backend.load(demoData());
      runs += 1;
      const history = join(dir.path, `history-${runs}.json`);
      const place = [...loaded.args, '--output-file', history];
      const before = normalized(await loaded.dump(), 'none', relaxed);
      if (!originals.has(relaxed)) originals.set(relaxed, before);
      const original = originals.get(relaxed);
      assert.equal(before, original, `${backend.name} holds the data as given`);

      const preview = await runCli(['--preview', ...args, ...place, '--json']);
      assert.equal(preview.code, 0, `${backend.name}: ${preview.stderr}`);
      fingerprints.set(backend.name, JSON.parse(preview.stdout).plan.fingerprint);

      const run = await runCli([...args, ...place]);
      assert.equal(run.code, 0, `${backend.name}: ${run.stderr}`);
      const migration = lastRecord(history).id;
      const state = await loaded.dump();
      executed.set(backend.name, normalized(state, migration, relaxed));
      if (!relaxed) executed.set(`${backend.name} (relaxed)`, normalized(state, migration, true));

      const rollback = await runCli(['rollback', migration, ...place]);
      assert.equal(rollback.code, 0, `${backend.name}: ${rollback.stderr}`);
      assert.equal(
        normalized(await loaded.dump(), migration, relaxed),
        original,
        `${backend.name}: rolled back to the original`,
      );
    }
    const [first] = backends;
    const expected = fingerprints.get(first?.name ?? '');
    assert.match(expected ?? '', /^[0-9a-f]{16}$/);
    for (const [name, fingerprint] of fingerprints)
      assert.equal(fingerprint, expected, `${args.join(' ')}: ${name}`);
    const canonical = executed.get(first?.name ?? '');
    const relaxedState = executed.get(`${first?.name} (relaxed)`);
    assert.notEqual(canonical, originals.get(false), 'the migration changed something');
    for (const [name, state] of executed) {
      const expectedState = name === 'wire peer' || name.endsWith('(relaxed)') ? relaxedState : canonical;
      assert.equal(state, expectedState, `${args.join(' ')}: ${name} after execute`);
    }
  }
});
