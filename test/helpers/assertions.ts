import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { Document } from 'mongodb';
import type { HistoryRecord } from '../../src/report/record.js';

export function readHistoryFile(file: string): HistoryRecord[] {
  const records = JSON.parse(readFileSync(file, 'utf8'));
  assert.ok(Array.isArray(records), `${file} must hold a JSON array`);
  return records;
}

export function lastRecord(file: string): HistoryRecord {
  const record = readHistoryFile(file).at(-1);
  assert.ok(record, `${file} has no record`);
  return record;
}

export function assertNoFile(file: string): void {
  assert.equal(existsSync(file), false, `${file} must not exist`);
}

export function byId(documents: Document[] | undefined, id: string): Document {
  const found = (documents ?? []).find((document) => String(document._id) === id);
  assert.ok(found, `no document ${id}`);
  return found;
}

export function countWhere(documents: Document[] | undefined, field: string, id: string): number {
  return (documents ?? []).filter((document) => String(document[field]) === id).length;
}
