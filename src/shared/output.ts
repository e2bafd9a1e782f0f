import { redactText, redactValue } from './secrets.js';

/**
 * Where the tool's words go. Reports go to stdout, or nowhere under --json (whose single document owns
 * stdout); progress and errors go to stderr. Everything passes the secret filter on its way out.
 */
export interface Output {
  report(text: string): void;
  progress(line: string): void;
  error(line: string): void;
  json(document: unknown): void;
  /** True once a JSON document was printed, so a failure does not print a second one. */
  readonly jsonWritten: boolean;
}

export interface Streams {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export function createOutput(streams: Streams, json: boolean, secrets: readonly string[]): Output {
  const clean = (text: string) => redactText(text, secrets);
  let jsonWritten = false;
  return {
    report: (text) => {
      if (!json) streams.stdout(clean(text));
    },
    progress: (line) => streams.stderr(clean(`${line}\n`)),
    error: (line) => streams.stderr(clean(`${line}\n`)),
    json: (document) => {
      jsonWritten = true;
      // Strings are redacted inside the document, so a masked secret can never break the JSON itself.
      const safe = redactValue(JSON.parse(JSON.stringify(document)), secrets);
      streams.stdout(`${JSON.stringify(safe, null, 2)}\n`);
    },
    get jsonWritten() {
      return jsonWritten;
    },
  };
}
