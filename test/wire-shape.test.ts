import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MongoClient, type Timestamp } from 'mongodb';
import { lastRecord } from './helpers/assertions.js';
import { wirePeerBackend } from './helpers/backends.js';
import { runCli, tempDir } from './helpers/cli.js';
import { demoData } from './helpers/data.js';
import { commandsOf } from './wire-peer/helpers.js';
import { startWirePeer } from './wire-peer/index.js';

/**
 * The tool's commands as they reach a server, read from the wire peer's command log: the shape of the
 * migration's transaction (what the driver sends on the tool's behalf), not MongoDB's answer to it.
 */

const peer = await startWirePeer();
const backend = await wirePeerBackend('shape', peer);
const dir = tempDir();
after(async () => {
  await backend.close();
  dir.remove();
});

const READS = new Set(['find', 'getMore', 'aggregate', 'count', 'distinct']);
const WRITES = new Set(['insert', 'update', 'delete', 'findAndModify', 'bulkWrite']);
const ARGS = ['--sources', 'acme_west,acme_east', '--destination', 'acme_corporate'];

test('execute: every read and write of the migration is in one transaction, snapshot first, committed w:majority', async () => {
  const loaded = await backend.load(demoData());
  peer.clearLog();
  const history = join(dir.path, 'execute.json');
  const result = await runCli([...ARGS, ...loaded.args, '--output-file', history]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(lastRecord(history).status, 'completed');

  const sent = commandsOf(peer);
  // Before its transaction the execution resolves and scans once outside it, to show the plan.
  const start = sent.findIndex((entry) => entry.startTransaction === true);
  const end = sent.findIndex((entry) => entry.name === 'commitTransaction');
  assert.ok(start >= 0 && end > start, 'one transaction, started then committed');
  const transaction = sent.slice(start, end + 1);
  const [first, ...rest] = transaction;
  assert.ok(first);
  assert.ok(READS.has(first.name), `the transaction starts with a read (${first.name})`);
  assert.match(first.lsid ?? '', /^[0-9a-f]{32}$/);
  assert.equal(typeof first.txnNumber, 'number');
  for (const entry of transaction) {
    assert.equal(entry.lsid, first.lsid, `${entry.name} on the transaction's session`);
    assert.equal(entry.txnNumber, first.txnNumber, `${entry.name} in the transaction`);
    assert.equal(entry.autocommit, false, `${entry.name} in the transaction`);
  }
  assert.equal(first.startTransaction, true);
  assert.deepEqual(first.readConcern, { level: 'snapshot' });
  for (const entry of rest) {
    assert.equal(entry.startTransaction, undefined, `${entry.name} does not start it again`);
    assert.equal(entry.readConcern, undefined, `${entry.name} carries no read concern`);
  }
  const commit = transaction.at(-1);
  // The bounds the plan states: a majority waited for 90 s at most, the commit capped at 120 s.
  assert.deepEqual(commit?.writeConcern, { w: 'majority', wtimeout: 90_000 });
  assert.equal(commit?.maxTimeMS, 120_000);
  const inside = transaction.slice(0, -1);
  assert.ok(
    inside.every((entry) => entry.writeConcern === undefined),
    'no write concern on the commands inside the transaction',
  );
  assert.deepEqual(
    [...new Set(inside.map((entry) => entry.name))].sort(),
    ['aggregate', 'find', 'insert', 'update'],
    'reads and writes, nothing else, inside',
  );
  assert.deepEqual(
    [...new Set(inside.filter((entry) => entry.name === 'insert').map((entry) => entry.collection))],
    ['customer_migrations'],
    'the only inserts are the journal, in the same transaction',
  );
  const writes = sent.filter((entry) => WRITES.has(entry.name));
  assert.ok(
    writes.length > 0 && writes.every((entry) => transaction.includes(entry)),
    'every write is inside',
  );
  assert.equal(sent.filter((entry) => entry.name === 'abortTransaction').length, 0);
});

test('rollback: every command up to commitTransaction, the drift counts included, is in its one transaction', async () => {
  const loaded = await backend.load(demoData());
  const history = join(dir.path, 'rollback.json');
  const migrated = await runCli([...ARGS, ...loaded.args, '--output-file', history]);
  assert.equal(migrated.code, 0, migrated.stderr);
  const id = lastRecord(history).id;
  peer.clearLog();
  const result = await runCli(['rollback', id, ...loaded.args, '--output-file', history]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(lastRecord(history).status, 'rolled_back');

  const sent = commandsOf(peer);
  const start = sent.findIndex((entry) => entry.startTransaction === true);
  const end = sent.findIndex((entry) => entry.name === 'commitTransaction');
  assert.ok(start >= 0 && end > start, 'one transaction, started then committed');
  assert.equal(sent.filter((entry) => entry.startTransaction === true).length, 1, 'started once');
  const transaction = sent.slice(start, end + 1);
  const [first] = transaction;
  assert.ok(first);
  assert.match(first.lsid ?? '', /^[0-9a-f]{32}$/);
  assert.equal(typeof first.txnNumber, 'number');
  assert.deepEqual(first.readConcern, { level: 'snapshot' });
  for (const entry of transaction) {
    assert.equal(entry.lsid, first.lsid, `${entry.name} ${entry.collection} on the transaction's session`);
    assert.equal(entry.txnNumber, first.txnNumber, `${entry.name} ${entry.collection} in the transaction`);
    assert.equal(entry.autocommit, false, `${entry.name} ${entry.collection} in the transaction`);
  }
  // The drift check counts inside the transaction (countDocuments is an aggregate on the wire).
  const inside = transaction.slice(0, -1);
  assert.ok(
    inside.some((entry) => entry.name === 'aggregate' && entry.collection === 'jobs'),
    'the drift counts are among them',
  );
  assert.deepEqual(
    [...new Set(inside.map((entry) => entry.name))].sort(),
    ['aggregate', 'find', 'getMore', 'insert', 'update'],
    'reads (the journal one chunk per getMore) and writes, nothing else, inside',
  );
  const writes = sent.filter((entry) => WRITES.has(entry.name));
  assert.ok(
    writes.length > 0 && writes.every((entry) => transaction.includes(entry)),
    'every write is inside',
  );
  assert.deepEqual(transaction.at(-1)?.writeConcern, { w: 'majority', wtimeout: 90_000 });
});

test('after the commit: every read is majority-committed on the primary and waits for the commit (afterClusterTime)', async () => {
  const loaded = await backend.load(demoData());
  peer.clearLog();
  const result = await runCli([...ARGS, ...loaded.args, '--output-file', join(dir.path, 'after.json')]);
  assert.equal(result.code, 0, result.stderr);
  // Nothing is written after the commit, so the peer's cluster time now is the commit's.
  const client = await MongoClient.connect(peer.uri());
  const committedAt = (await client.db('admin').command({ ping: 1 })).operationTime as Timestamp;
  await client.close();
  const sent = commandsOf(peer);
  const commit = sent.findIndex((entry) => entry.name === 'commitTransaction');
  const reads = sent.slice(commit + 1).filter((entry) => READS.has(entry.name));
  assert.deepEqual(
    [...new Set(reads.map((entry) => entry.collection))].sort(),
    ['invoices', 'jobs', 'users'],
    'the recount reads every mapped collection',
  );
  for (const entry of reads) {
    assert.equal(entry.readConcern?.level, 'majority', `${entry.name} ${entry.collection}: majority`);
    const after = entry.readConcern?.afterClusterTime as Timestamp | undefined;
    assert.ok(after?.gte(committedAt), `${entry.name} ${entry.collection}: at or after the commit's time`);
    // The driver sends no $readPreference for `primary` (any other mode would be named here).
    assert.equal(entry.command.$readPreference, undefined, `${entry.name} ${entry.collection}: primary`);
    assert.equal(entry.txnNumber, undefined, 'outside the transaction');
  }
});

test('execute with nothing left to move: no transaction is opened, no write is sent', async () => {
  const loaded = await backend.load(demoData());
  const history = join(dir.path, 'noop.json');
  assert.equal((await runCli([...ARGS, ...loaded.args, '--output-file', history])).code, 0);
  peer.clearLog();
  const again = await runCli([...ARGS, ...loaded.args, '--output-file', history]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(lastRecord(history).status, 'noop');
  const sent = commandsOf(peer);
  assert.ok(
    sent.some((entry) => READS.has(entry.name)),
    'it read the data',
  );
  assert.deepEqual(
    sent
      .filter(
        (entry) =>
          WRITES.has(entry.name) || entry.txnNumber !== undefined || entry.name.endsWith('Transaction'),
      )
      .map((entry) => entry.name),
    [],
  );
});

test('preview: no write command and no commitTransaction reach the server', async () => {
  const loaded = await backend.load(demoData());
  const before = await loaded.state();
  peer.clearLog();
  const result = await runCli(['--preview', ...ARGS, ...loaded.args]);
  assert.equal(result.code, 0, result.stderr);
  const sent = commandsOf(peer);
  assert.ok(
    sent.some((entry) => READS.has(entry.name)),
    'the preview read the data',
  );
  // One point in time: every read on one snapshot session, the first at the server's time, the others at the
  // atClusterTime it answered; no transaction at all (MongoDB 5.0+).
  // Data reads; the collections' statistics ($collStats, for the size estimate) are not data, and a server
  // refuses them in a transaction, so they are read outside the snapshot, like listIndexes and serverStatus.
  const statistics = sent.filter(
    (entry) => entry.name === 'aggregate' && '$collStats' in (entry.command.pipeline?.[0] ?? {}),
  );
  assert.deepEqual(
    statistics.map((entry) => [
      entry.collection,
      entry.lsid === undefined || entry.readConcern === undefined,
    ]),
    ['users', 'jobs', 'invoices', 'customer_migrations'].map((name) => [name, true]),
  );
  const reads = sent.filter((entry) => READS.has(entry.name) && !statistics.includes(entry));
  const [first, ...later] = reads;
  assert.ok(first);
  assert.match(first.lsid ?? '', /^[0-9a-f]{32}$/);
  assert.deepEqual(first.readConcern, { level: 'snapshot' });
  for (const entry of later) {
    assert.equal(entry.lsid, first.lsid, `${entry.name} on the preview's session`);
    assert.equal(entry.readConcern?.level, 'snapshot');
    assert.ok(entry.readConcern?.atClusterTime, `${entry.name} reads at the first read's time`);
  }
  assert.equal(new Set(later.map((entry) => String(entry.readConcern?.atClusterTime))).size, 1);
  assert.ok(sent.every((entry) => entry.startTransaction === undefined && entry.txnNumber === undefined));
  assert.deepEqual(
    sent
      .filter((entry) => WRITES.has(entry.name) || entry.name === 'commitTransaction')
      .map((entry) => entry.name),
    [],
  );
  assert.equal(await loaded.state(), before);
});
