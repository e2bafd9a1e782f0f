import { redactUri } from '../shared/secrets.js';
import type { StoreTarget } from '../store/types.js';

/** What a printed command must repeat so that it acts on what this run acted on. */
export interface CommandPlace {
  target: StoreTarget;
  /** The URI was given with --uri (else it came from MONGODB_URI, or is the default). */
  uriOption?: boolean;
  /** MONGODB_URI was set (and --uri not given): the command names it, so that it is never the default instead. */
  uriFromEnvironment?: boolean;
  historyFile: string;
  configFile?: string;
}

const LAUNCHER = 'node scripts/migrateCustomerData.js';

/** A word as a POSIX shell reads it back unchanged: bare when it is safe, else in single quotes. */
export function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The options that point a command at this run's data, history file and reference map. */
function placeWords(place: CommandPlace): string[] {
  const { target } = place;
  const words: string[] = [];
  if (target.kind === 'snapshot') words.push(`--snapshot ${shellWord(target.file)}`);
  else if (place.uriOption) words.push(`--uri ${shellWord(redactUri(target.uri))}`);
  // Named, not copied: the password stays in the environment, and an unset variable is refused, never the default.
  else if (place.uriFromEnvironment) words.push('--uri "$MONGODB_URI"');
  if (place.configFile) words.push(`--config ${shellWord(place.configFile)}`);
  words.push(`--output-file ${shellWord(place.historyFile)}`);
  return words;
}

/**
 * Every command the tool prints for the operator to run next: the launcher, the words given (already shell words:
 * quote values with `shellWord`), then the same target, history file and reference map as this run, so that it
 * works when pasted. A password in --uri is masked; `passwordNote` says what to do about it.
 */
export function commandLine(words: string[], place: CommandPlace, layout: 'line' | 'lines' = 'line'): string {
  const parts = [LAUNCHER, ...words, ...placeWords(place)].filter(Boolean);
  return layout === 'line' ? parts.join(' ') : parts.join(' \\\n  ');
}

/** When the command shows `--uri` with its password masked: how to run it, or undefined. */
export function passwordNote(place: CommandPlace): string | undefined {
  if (place.target.kind !== 'mongodb' || !place.uriOption) return undefined;
  if (redactUri(place.target.uri) === place.target.uri) return undefined;
  return 'the password in --uri is masked (****): put it back, or export MONGODB_URI and give --uri "$MONGODB_URI"';
}
