import { type Document, ObjectId } from 'mongodb';
import { readHistory } from '../files/history.js';
import { usernameClashes } from '../plan/after-commit.js';
import { checkDatabase } from '../plan/database.js';
import { arrivalsOf } from '../plan/prior.js';
import { type Counts, SUB_ACCOUNT_KINDS, spellings } from '../plan/scan.js';
import { CUSTOMER_KIND, fieldRefs, loadReferenceMap, type ReferenceMap, USERS } from '../plan/schema.js';
import { clashAdvice, clashText } from '../report/report.js';
import { ExitCode, UsageError } from '../shared/errors.js';
import type { Output } from '../shared/output.js';
import { showValue } from '../shared/plain.js';
import { describeTarget } from '../store/index.js';
import { collect, type ReadOnlyStore } from '../store/types.js';
import { chunksOf, type JournalHead } from '../transaction/journal.js';
import { accountDrift, type DriftItem, driftIn, journalEntry } from '../transaction/rollback-plan.js';
import type { VerifyCommand } from './command.js';
import type { ActionContext } from './context.js';
import { phase } from './progress.js';

export interface Check {
  name: string;
  passed: boolean;
  detail: string;
  /** Not checked, by design (--skip-invoices left these with the sources): never counted as passing. */
  skipped?: true;
}

/** Samples shown per failing check; the rest are counted. */
const SAMPLES = 5;

/**
 * `verify [id]`: the guide's own verification, as a checklist read from the database and the journal. A
 * completed migration is checked for what it did; a rolled-back one for what the rollback undid. Reads only.
 */
export async function verifyMigration(
  command: VerifyCommand,
  output: Output,
  context: ActionContext,
): Promise<ExitCode> {
  const map = await loadReferenceMap(command.configFile);
  const id = command.migrationId ?? (await latestCompleted(command.historyFile));
  const store = await phase(output, `Reading ${describeTarget(command.target)}`, () =>
    context.openReadOnlyStore(command.target, { pointInTime: !command.scanAll }),
  );
  try {
    await checkDatabase(store);
    const head = await journalEntry(store, map.journalCollection, id, store.description);
    const checks = await phase(output, 'Checking', async () => {
      const done =
        head.status === 'rolled_back'
          ? await rolledBackChecks(store, head, map)
          : await completedChecks(store, head, map);
      if (command.scanAll) done.push(await scanAll(store, head, map));
      return done;
    });
    const passed = checks.every((check) => check.passed || check.skipped);
    if (command.json) {
      output.json({
        mode: 'verify',
        migrationId: id,
        status: head.status,
        target: store.description,
        passed,
        checks,
      });
    } else {
      output.report(renderChecks(head, store.description, checks, passed));
    }
    return passed ? ExitCode.ok : ExitCode.checksFailed;
  } finally {
    await store.close();
  }
}

async function latestCompleted(historyFile: string): Promise<string> {
  const records = (await readHistory(historyFile)) as { id?: string; status?: string; rollsBack?: string }[];
  const latest = records.filter((record) => record.status === 'completed' && !record.rollsBack).at(-1);
  if (!latest?.id) {
    throw new UsageError(`No completed migration in ${historyFile}; give the migration id: verify <id>`);
  }
  return latest.id;
}

function check(name: string, passed: boolean, detail: string): Check {
  return { name, passed, detail };
}

async function completedChecks(store: ReadOnlyStore, head: JournalHead, map: ReferenceMap): Promise<Check[]> {
  const checks = [
    check('journal', true, `migration ${head._id} committed at ${head.startedAt.toISOString()}`),
  ];
  checks.push(await sourcesChecked(store, head));
  checks.push(await journaledStillMoved(store, head, map));
  checks.push(...(await guideCounts(store, head, await latestFollowUp(store, head, map))));
  checks.push(...(await nothingLeft(store, head)));
  checks.push(await usernamesUnique(store, head));
  checks.push(...(await orphans(store, head.map)));
  return checks;
}

/**
 * No account the migration brought under the destination shares a username with another live account there:
 * one created under the destination while the migration ran would (write skew).
 */
async function usernamesUnique(store: ReadOnlyStore, head: JournalHead): Promise<Check> {
  const clashes = await usernameClashes(store, head.destination, arrivalsOf({ ...head, prior: [] }));
  return check(
    'usernames under the destination',
    clashes.length === 0,
    clashes.length === 0
      ? `no account it moved shares a username with another live account under ${head.destination.username}`
      : `${clashes.length} clash${clashes.length === 1 ? '' : 'es'}: ${clashes.map((c) => `${clashText(c)}: ${clashAdvice(c)}`).join('; ')}`,
  );
}

/** Each source deactivated, or (convert-to-admin) a kind '2' admin under the destination. */
async function sourcesChecked(store: ReadOnlyStore, head: JournalHead): Promise<Check> {
  const documents = await collect(
    store.find(USERS, { _id: { $in: head.sources.map((source) => source._id) } }),
  );
  const problems = head.sources.flatMap((source) => {
    const document = documents.find((candidate) => source._id.equals(candidate._id));
    if (!document) return [`${source.username}: missing`];
    if (head.options.convertToAdmin) {
      const ok =
        document.kind === '2' && head.destination._id.equals(document.parent) && document.active === true;
      return ok
        ? []
        : [`${source.username}: not an active kind '2' admin under ${head.destination.username}`];
    }
    const ok = document.active === false && document.markedDelete === true;
    return ok ? [] : [`${source.username}: not deactivated (active: false, markedDelete: true)`];
  });
  const what = head.options.convertToAdmin ? 'converted to admins under the destination' : 'deactivated';
  return check(
    'sources',
    problems.length === 0,
    problems.length === 0 ? `every source ${what}` : problems.join('; '),
  );
}

/** Every document the journal says moved still holds the value the migration wrote. */
async function journaledStillMoved(
  store: ReadOnlyStore,
  head: JournalHead,
  map: ReferenceMap,
): Promise<Check> {
  const drift: DriftItem[] = [];
  let documents = 0;
  for await (const chunk of chunksOf(store, map.journalCollection, head._id)) {
    documents += chunk.ids.length;
    drift.push(...(await driftIn(store, chunk, chunk.to)));
  }
  return check(
    'moved documents',
    drift.length === 0,
    drift.length === 0
      ? `all ${documents} journaled document(s) still reference what the migration set`
      : `${drift.length} of ${documents} no longer do: ${samples(drift.map((item) => `${item.collection} ${item.id} (${item.detail})`))}`,
  );
}

/**
 * A follow-up run moved what this migration left behind into the same destination: its expectations (taken
 * later, on top of this migration's result) are the ones the destination should meet now.
 */
async function latestFollowUp(
  store: ReadOnlyStore,
  head: JournalHead,
  map: ReferenceMap,
): Promise<JournalHead | undefined> {
  const followUps = await collect(
    store.find(
      map.journalCollection,
      {
        type: 'migration',
        status: 'committed',
        'destination._id': head.destination._id,
        startedAt: { $gt: head.startedAt },
        sources: { $elemMatch: { followUp: true, _id: { $in: head.sources.map((source) => source._id) } } },
      },
      { sort: { startedAt: -1 }, limit: 1 },
    ),
  );
  return followUps[0] as JournalHead | undefined;
}

/** The guide's "Verify Job Migration" and "Verify Sub-Account Migration", against the preview's expectations. */
async function guideCounts(
  store: ReadOnlyStore,
  head: JournalHead,
  followUp?: JournalHead,
): Promise<Check[]> {
  const destination = spellings(head.destination._id);
  const expectations = (followUp ?? head).expectations;
  const basis = followUp ? ` (as of follow-up run ${followUp._id})` : '';
  const checks: Check[] = [];
  for (const [key, stored] of Object.entries(expectations.customerRefs)) {
    const [collection, field] = splitKey(key);
    // Numbers read back from the journal are BSON Int32 objects (reads keep BSON types).
    const expected = { live: Number(stored.live), softDeleted: Number(stored.softDeleted) };
    const counts: Counts = {
      live: await store.count(collection, { [field]: { $in: destination }, markedDelete: { $ne: true } }),
      softDeleted: await store.count(collection, { [field]: { $in: destination }, markedDelete: true }),
    };
    const same = counts.live === expected.live && counts.softDeleted === expected.softDeleted;
    const kept = head.options.skipInvoices && head.map.invoiceCollections.includes(collection);
    const what = kept
      ? "the destination's own: --skip-invoices kept the sources' with them"
      : "the destination's own plus what moved";
    checks.push(
      check(
        `${key} under the destination`,
        same,
        `${counts.live} live + ${counts.softDeleted} soft-deleted; expected ${expected.live} + ${expected.softDeleted} (${what}${basis})${same ? '' : ': documents created, deleted or moved since the migration change this count'}`,
      ),
    );
  }
  const subAccounts = await store.count(USERS, {
    parent: { $in: destination },
    kind: { $in: SUB_ACCOUNT_KINDS },
  });
  checks.push(
    check(
      'sub-accounts under the destination',
      subAccounts === Number(expectations.subAccounts),
      `${subAccounts} of kinds ${SUB_ACCOUNT_KINDS.join(', ')}; expected ${expectations.subAccounts}${basis}`,
    ),
  );
  return checks;
}

/**
 * No mapped field still references a source or a merged account, in either spelling, arrays included. Fields
 * --skip-invoices left with the sources are counted and reported as skipped, never as passing.
 */
async function nothingLeft(store: ReadOnlyStore, head: JournalHead): Promise<Check[]> {
  const map = head.map;
  const sources = head.sources.flatMap((source) => spellings(source._id));
  const merged = head.accounts.filter((a) => a.role === 'merged').flatMap((a) => spellings(a._id));
  const left: string[] = [];
  const skipped: string[] = [];
  const targets = [
    ...fieldRefs(map.customerRefs, map).map((ref) => ({ ...ref, values: sources })),
    ...fieldRefs(map.accountRefs, map).map((ref) => ({ ...ref, values: merged })),
  ];
  for (const ref of targets) {
    if (ref.values.length === 0) continue;
    const count = await store.count(ref.collection, { [ref.field]: { $in: ref.values } });
    if (head.options.skipInvoices && ref.invoice) skipped.push(`${ref.collection}.${ref.field}: ${count}`);
    else if (count > 0) left.push(`${ref.collection}.${ref.field}: ${count}`);
  }
  const checked = skipped.length > 0 ? 'no other mapped field' : 'no mapped field';
  const checks = [
    check(
      'nothing left behind',
      left.length === 0,
      left.length === 0
        ? `${checked} references a source or a merged account`
        : `still referencing a source or merged account: ${left.join(', ')} (a follow-up run moves them)`,
    ),
  ];
  if (skipped.length > 0) {
    checks.push({
      name: 'left with the sources (--skip-invoices)',
      passed: false,
      skipped: true,
      detail: `${skipped.join(', ')} document(s) still reference a source or merged account, as asked; not checked`,
    });
  }
  return checks;
}

/** The guide's "Find Orphaned Data": live documents whose customer reference points at no user. */
async function orphans(store: ReadOnlyStore, map: ReferenceMap): Promise<Check[]> {
  const checks: Check[] = [];
  for (const ref of fieldRefs(map.customerRefs, map)) {
    const match: Document = { markedDelete: { $ne: true } };
    if (ref.collection === USERS) match.kind = { $ne: CUSTOMER_KIND };
    const groups = await collect(
      store.aggregate(ref.collection, [
        { $match: match },
        { $group: { _id: `$${ref.field}`, n: { $sum: 1 } } },
      ]),
    );
    const ids = groups.flatMap((group) => asObjectId(group._id) ?? []);
    const existing = new Set(
      (await collect(store.find(USERS, { _id: { $in: ids } }, { projection: { _id: 1 } }))).map((u) =>
        String(u._id),
      ),
    );
    const orphaned = groups.filter((group) => {
      const id = asObjectId(group._id);
      return !id || !existing.has(id.toHexString());
    });
    const count = orphaned.reduce((sum, group) => sum + Number(group.n), 0);
    checks.push(
      check(
        `orphans in ${ref.collection}.${ref.field}`,
        count === 0,
        count === 0
          ? 'every live document points at an existing user'
          : `${count} live document(s) point at no user (values: ${samples(orphaned.map((g) => showValue(g._id, 'none')))})`,
      ),
    );
  }
  return checks;
}

function asObjectId(value: unknown): ObjectId | undefined {
  if (value instanceof ObjectId) return value;
  if (typeof value === 'string' && /^[0-9a-fA-F]{24}$/.test(value)) return new ObjectId(value);
  return undefined;
}

async function rolledBackChecks(
  store: ReadOnlyStore,
  head: JournalHead,
  map: ReferenceMap,
): Promise<Check[]> {
  const checks = [
    check(
      'journal',
      true,
      `migration ${head._id} was rolled back by ${head.rolledBackBy} at ${head.rolledBackAt?.toISOString()}`,
    ),
  ];
  const drift: DriftItem[] = [];
  let documents = 0;
  for await (const chunk of chunksOf(store, map.journalCollection, head._id)) {
    documents += chunk.ids.length;
    drift.push(...(await driftIn(store, chunk, chunk.from)));
  }
  checks.push(
    check(
      'references restored',
      drift.length === 0,
      drift.length === 0
        ? `all ${documents} journaled document(s) reference what they did before the migration`
        : `${drift.length} of ${documents} do not: ${samples(drift.map((item) => `${item.collection} ${item.id} (${item.detail})`))}`,
    ),
  );
  const accounts: DriftItem[] = [];
  await accountDrift(store, head.accounts, 'before', (item) => accounts.push(item));
  checks.push(
    check(
      'accounts restored',
      accounts.length === 0,
      accounts.length === 0
        ? `${head.accounts.length} account document(s) equal their before-images`
        : `${accounts.length} differ from their before-images (edited since the rollback?): ${samples(accounts.map((item) => `${item.id} ${item.fields.join(',')}`))}`,
    ),
  );
  const marked = await store.count(USERS, { _id: head.destination._id, migrationsReceived: head._id });
  checks.push(
    check(
      'destination',
      marked === 0,
      marked === 0 ? 'no longer records the migration' : 'still records the migration',
    ),
  );
  return checks;
}

/**
 * Every document of every collection, walked field by field for a source's id as an ObjectId or a hex string:
 * the references the map does not know about. Reads the whole database once.
 */
async function scanAll(store: ReadOnlyStore, head: JournalHead, map: ReferenceMap): Promise<Check> {
  const wanted = new Set(head.sources.flatMap((source) => [source._id.toHexString()]));
  const expected = new Set(
    head.options.skipInvoices
      ? fieldRefs(head.map.customerRefs, head.map)
          .filter((ref) => ref.invoice)
          .map((ref) => `${ref.collection}.${ref.field}`)
      : [],
  );
  const found = new Map<string, { count: number; samples: string[] }>();
  let scanned = 0;
  for (const collection of await store.listCollections()) {
    if (collection === map.journalCollection) continue;
    for await (const document of store.find(collection, {})) {
      scanned += 1;
      for (const path of referencePaths(document, wanted)) {
        // A source's own _id, and invoices deliberately left with their sources, are not stray references.
        if ((collection === USERS && path === '_id') || expected.has(`${collection}.${path}`)) continue;
        const key = `${collection}.${path}`;
        const entry = found.get(key) ?? { count: 0, samples: [] };
        entry.count += 1;
        if (entry.samples.length < 3) entry.samples.push(String(document._id));
        found.set(key, entry);
      }
    }
  }
  const list = [...found.entries()].map(
    ([key, entry]) => `${key}: ${entry.count} (e.g. ${entry.samples.join(', ')})`,
  );
  return check(
    'scan of every collection',
    list.length === 0,
    list.length === 0
      ? `${scanned} document(s) read; no field anywhere holds a source's id`
      : `fields holding a source's id: ${list.join('; ')}`,
  );
}

/** Field paths (array positions collapsed) whose value is one of the ids, as an ObjectId or its hex string. */
function referencePaths(document: Document, wanted: Set<string>): Set<string> {
  const paths = new Set<string>();
  const walk = (value: unknown, path: string) => {
    if (value instanceof ObjectId) {
      if (wanted.has(value.toHexString())) paths.add(path);
    } else if (typeof value === 'string') {
      if (wanted.has(value.toLowerCase())) paths.add(path);
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, path);
    } else if (
      value !== null &&
      typeof value === 'object' &&
      !(value instanceof Date) &&
      !('_bsontype' in value)
    ) {
      for (const [key, entry] of Object.entries(value)) walk(entry, path ? `${path}.${key}` : key);
    }
  };
  walk(document, '');
  return paths;
}

function splitKey(key: string): [string, string] {
  const dot = key.indexOf('.');
  return [key.slice(0, dot), key.slice(dot + 1)];
}

function samples(items: string[]): string {
  const shown = items.slice(0, SAMPLES).join(', ');
  return items.length > SAMPLES ? `${shown} and ${items.length - SAMPLES} more` : shown;
}

function renderChecks(head: JournalHead, target: string, checks: Check[], passed: boolean): string {
  const skippedCount = checks.filter((c) => c.skipped).length;
  const lines = [
    `Verify migration ${head._id}: ${head.sources.map((s) => s.username).join(', ')} -> ${head.destination.username} (${head.status})`,
    `Target: ${target}`,
    '',
    ...checks.map((c) => `  ${c.skipped ? 'SKIP' : c.passed ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`),
    '',
    passed
      ? `All checks passed.${skippedCount > 0 ? ` ${skippedCount} check(s) SKIPPED (not a pass).` : ''}`
      : `${checks.filter((c) => !c.passed && !c.skipped).length} check(s) FAILED.`,
  ];
  return `${lines.join('\n')}\n`;
}
