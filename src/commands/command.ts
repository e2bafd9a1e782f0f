import type { CustomerRequest } from '../plan/resolve.js';
import type { MigrationOptions } from '../plan/scan.js';
import type { StoreTarget } from '../store/types.js';

/** What each command is asked to do, as the option parser hands it over. */

export const HISTORY_STATUSES = ['completed', 'failed', 'rolled_back', 'unknown', 'noop'] as const;
export type HistoryStatus = (typeof HISTORY_STATUSES)[number];

/** Where a command reads and writes: the database (or snapshot), the history file, the reference map. */
export interface Place {
  target: StoreTarget;
  historyFile: string;
  configFile?: string;
  json: boolean;
}

export interface MigrateCommand extends Place {
  action: 'migrate';
  preview: boolean;
  request: CustomerRequest;
  options: MigrationOptions;
  expectPlan?: string;
  /** --preview --report: the preview as Markdown, for the change ticket. */
  reportFile?: string;
  /** --force: the report may replace an existing file this tool did not write. */
  force: boolean;
}

export interface RollbackCommand extends Place {
  action: 'rollback';
  migrationId: string;
  preview: boolean;
}

export interface VerifyCommand extends Place {
  action: 'verify';
  /** Undefined: the latest completed migration in the history file. */
  migrationId?: string;
  scanAll: boolean;
}

export interface HistoryCommand {
  action: 'history';
  historyFile: string;
  status?: HistoryStatus;
  json: boolean;
}

export type ToolCommand = MigrateCommand | RollbackCommand | VerifyCommand | HistoryCommand;
