#!/usr/bin/env node
// Runs a preview and then a real merge against a throw-away copy of the demo snapshot.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const launcher = path.join(here, 'migrateCustomerData.js');
const sample = path.join(here, '..', 'examples', 'agmission-demo.json');

// Work on a copy in a temp folder so the demo never changes the example or the project's own history file.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agm-demo-'));
const snapshot = path.join(tmp, 'agmission.json');
const history = path.join(tmp, 'migration_history.json');
fs.copyFileSync(sample, snapshot);

const common = ['--sources', 'acme_west,acme_east,acme_south', '--destination', 'acme_corporate'];
const files = ['--snapshot', snapshot, '--output-file', history];
const steps = [
  { title: 'Step 1: preview (writes nothing)', args: ['--preview', ...common, ...files] },
  { title: 'Step 2: execute the merge', args: [...common, ...files] },
  { title: "Step 3: verify it with the guide's checks", args: ['verify', ...files] },
];

for (const step of steps) {
  console.log(`\n== ${step.title} ==`);
  const result = spawnSync(process.execPath, [launcher, ...step.args], { stdio: 'inherit' });
  if (result.error || result.status !== 0) {
    const why =
      result.error?.message ?? (result.signal ? `killed by ${result.signal}` : `exit code ${result.status}`);
    console.error(`\nDemo failed at "${step.title}": ${why}`);
    process.exit(1);
  }
}

console.log('\n== Step 4: last migration history record ==');
const records = JSON.parse(fs.readFileSync(history, 'utf8'));
console.log(JSON.stringify(records.at(-1), null, 2));

console.log(`\nDemo files are in ${tmp}`);
console.log(
  `To undo it: node scripts/migrateCustomerData.js rollback ${records.at(-1).id} --preview ${files.join(' ')}`,
);
console.log('To see username conflicts, try:');
console.log(
  `  node scripts/migrateCustomerData.js --preview --sources acme_aviation,regional_ag --destination consolidated_ag --snapshot ${snapshot}`,
);
