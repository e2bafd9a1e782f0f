import createDebug from 'debug';
import { ExitCode } from './errors.js';
import type { MigrateCommand } from './options.js';
import type { Output } from './output.js';
import { planJson, renderPlan } from './report.js';
import { resolveCustomers } from './resolve.js';
import { scanMigration } from './scan.js';
import { loadReferenceMap, mapCollections } from './schema.js';
import type { OpenOptions } from './store/index.js';
import type { ReadOnlyStore, StoreTarget } from './store/types.js';

const log = createDebug('agm:migrate-customer-data');

/**
 * Read-only by construction: the only store this action can obtain is a ReadOnlyStore, whose implementations
 * have no write method, and it touches no file (no history record, no lock).
 */
export async function previewMigration(
  command: MigrateCommand,
  output: Output,
  openReadOnlyStore: (target: StoreTarget, options?: OpenOptions) => Promise<ReadOnlyStore>,
): Promise<ExitCode> {
  const map = await loadReferenceMap(command.configFile);
  const store = await openReadOnlyStore(command.target, { requiredCollections: mapCollections(map) });
  try {
    log('preview on %s', store.description);
    const customers = await resolveCustomers(store, command.request);
    const plan = await scanMigration(store, customers, command.options, map, new Date());
    log('plan %s: %d steps, %d conflicts', plan.fingerprint, plan.steps.length, plan.conflicts.length);
    if (command.json) {
      output.json({
        mode: 'preview',
        target: store.description,
        wouldProceed: !plan.blocked,
        plan: planJson(plan),
      });
    } else {
      output.report(renderPlan(plan, store.description, 'preview'));
    }
    return plan.blocked ? ExitCode.conflicts : ExitCode.ok;
  } finally {
    await store.close();
  }
}
