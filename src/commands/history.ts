import { readHistory } from '../files/history.js';
import type { HistoryRecord } from '../report/record.js';
import { ExitCode } from '../shared/errors.js';
import type { Output } from '../shared/output.js';
import type { HistoryCommand } from './command.js';

export interface HistoryRow {
  id: string;
  time: string;
  status: string;
  sources: string;
  destination: string;
  documents: number;
  /** For a rollback: the migration it reversed; for a migration: the rollback that reversed it. */
  rollsBack?: string;
  rolledBackBy?: string;
  /** A follow-up run: the migrations whose stragglers it moved. */
  followUpOf?: string[];
  /** A `noop` run: the migrations that had already moved its sources. */
  movedBy?: string[];
}

/** `history`: the history file as a table (or JSON rows); the guide's jq one-liners keep working on the file. */
export async function showHistory(command: HistoryCommand, output: Output): Promise<ExitCode> {
  const records = (await readHistory(command.historyFile)) as Partial<HistoryRecord>[];
  const rolledBackBy = new Map(
    records
      .filter((r) => r.status === 'rolled_back' && r.rollsBack)
      .map((r) => [r.rollsBack as string, r.id as string]),
  );
  const byId = new Map(records.map((record) => [String(record.id), record]));
  const rows = records
    .filter((record) => command.status === undefined || record.status === command.status)
    .map((record) => rowOf(record, rolledBackBy, byId));
  if (command.json) {
    // The envelope every command's --json has: what ran, where, and its result.
    output.json({
      mode: 'history',
      historyFile: command.historyFile,
      filter: command.status === undefined ? null : { status: command.status },
      total: records.length,
      shown: rows.length,
      records: rows,
    });
  } else {
    output.report(renderTable(rows, records.length, command));
  }
  return ExitCode.ok;
}

function rowOf(
  record: Partial<HistoryRecord>,
  rolledBackBy: Map<string, string>,
  byId: Map<string, Partial<HistoryRecord>>,
): HistoryRow {
  const id = String(record.id ?? '');
  // A rollback that failed before it read the journal names no customers: those of the migration it reverses.
  const subject = record.rollsBack && !record.destination ? (byId.get(record.rollsBack) ?? record) : record;
  const row: HistoryRow = {
    id,
    time: String(record.startedAt ?? ''),
    status: String(record.status ?? ''),
    sources: (subject.sources ?? []).map((s) => s.username).join(',') || requested(subject),
    destination:
      subject.destination?.username ?? (isRequest(subject.request) ? subject.request.destination : ''),
    documents: record.stats?.documentsModified ?? 0,
  };
  if (record.rollsBack) row.rollsBack = record.rollsBack;
  const by = rolledBackBy.get(id);
  if (by) row.rolledBackBy = by;
  if (record.followUpOf?.length) row.followUpOf = record.followUpOf;
  if (record.nothingToDo) row.movedBy = record.nothingToDo.movedBy.map((migration) => migration.id);
  return row;
}

/** The last column: who rolled back what, what a follow-up followed, what a noop run found done. */
function note(row: HistoryRow): string {
  if (row.rolledBackBy) return row.rolledBackBy;
  if (row.rollsBack) return `reverses ${row.rollsBack}`;
  if (row.movedBy) return `nothing to do: moved by ${row.movedBy.join(', ')}`;
  if (row.followUpOf) return `follow-up of ${row.followUpOf.join(', ')}`;
  return '';
}

function isRequest(request: unknown): request is { sources: string[]; destination: string } {
  return typeof request === 'object' && request !== null && 'destination' in request;
}

function requested(record: Partial<HistoryRecord>): string {
  return isRequest(record.request) ? record.request.sources.join(',') : '';
}

function renderTable(rows: HistoryRow[], total: number, command: HistoryCommand): string {
  if (rows.length === 0) {
    return `No ${command.status ? `${command.status} ` : ''}records in ${command.historyFile}${command.status ? ` (${total} record(s) in all)` : ''}\n`;
  }
  const table = [
    ['id', 'time', 'status', 'sources -> destination', 'documents', 'rolled back by / reverses / note'],
    ...rows.map((row) => [
      row.id,
      row.time,
      row.status,
      `${row.sources} -> ${row.destination}`,
      String(row.documents),
      note(row),
    ]),
  ];
  const widths =
    table[0]?.map((_, column) => Math.max(...table.map((row) => row[column]?.length ?? 0))) ?? [];
  const lines = table.map((row) =>
    row
      .map((cell, column) =>
        column === 4 ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd(),
  );
  const count = command.status
    ? `${rows.length} ${command.status} record(s) shown, of ${total} in ${command.historyFile}`
    : `${rows.length} record(s) in ${command.historyFile}`;
  return `${lines.join('\n')}\n${count}\n`;
}
