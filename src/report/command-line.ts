import { redactUri } from '../shared/secrets.js';
import type { StoreTarget } from '../store/types.js';

/** What a printed command must repeat so that it acts on what this run acted on. */
export interface CommandPlace {
  target: StoreTarget;
  historyFile: string;
  configFile?: string;
}

/** A command to paste, and for a URI holding a password the line that says where the command finds it. */
export interface OperatorCommand {
  parts: string[];
  note?: string;
}

const LAUNCHER = 'node scripts/migrateCustomerData.js';

/** A word as a POSIX shell reads it back unchanged: bare when it is safe, else in single quotes. */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Every command the tool prints for the operator to run next: the launcher, the words given (already shell words:
 * quote values with `shellWord`), then this run's target, history file and reference map, so that it works when
 * pasted. A URI is repeated as given unless it holds a password, which is never printed: the command then reads
 * it from MONGODB_URI (`--uri "$MONGODB_URI"`, refused when the variable is unset, never taken for the default
 * server), and the note says so.
 */
export function operatorCommand(words: string[], place: CommandPlace): OperatorCommand {
  const { target } = place;
  const secret = target.kind === 'mongodb' && redactUri(target.uri) !== target.uri;
  const parts = [
    LAUNCHER,
    ...words,
    target.kind === 'snapshot' ? `--snapshot ${shellWord(target.file)}` : '',
    target.kind === 'dump' ? `--dump ${shellWord(target.dir)}` : '',
    target.kind === 'mongodb' ? `--uri ${secret ? '"$MONGODB_URI"' : shellWord(target.uri)}` : '',
    place.configFile ? `--config ${shellWord(place.configFile)}` : '',
    `--output-file ${shellWord(place.historyFile)}`,
  ].filter(Boolean);
  if (!secret) return { parts };
  return {
    parts,
    note: `with MONGODB_URI set to the connection string used now (${redactUri(target.uri)}): its password is never printed`,
  };
}

/** The command on one line (a hint), or one option per line (a shell block). */
export function commandLine(words: string[], place: CommandPlace, layout: 'line' | 'lines' = 'line'): string {
  return operatorCommand(words, place).parts.join(layout === 'line' ? ' ' : ' \\\n  ');
}

/** The note of the commands printed for this place, or undefined. */
export function passwordNote(place: CommandPlace): string | undefined {
  return operatorCommand([], place).note;
}
