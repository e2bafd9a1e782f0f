import { ConnectionString } from 'mongodb-connection-string-url';

const MASK = '****';

/** The URI as it may be shown: user kept, password masked. */
export function redactUri(uri: string): string {
  try {
    const parsed = new ConnectionString(uri);
    if (parsed.password) parsed.password = MASK;
    return parsed.toString();
  } catch {
    return redactText(uri);
  }
}

/**
 * Last line of defence for text that leaves the process (messages, logs, history records): masks the
 * password of any `scheme://user:password@` it contains, and the given secrets wherever they stand.
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let result = text.replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, `$1${MASK}@`);
  for (const secret of secrets) {
    if (secret.length > 0) result = result.split(secret).join(MASK);
  }
  return result;
}

/** The password of a URI in both spellings a message could carry it in (URL-encoded and decoded). */
export function secretsOf(uri: string | undefined): string[] {
  if (!uri) return [];
  const match = /^[^:]+:\/\/[^/@:]*:([^@/]*)@/.exec(uri);
  if (!match?.[1]) return [];
  const encoded = match[1];
  let decoded = encoded;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {}
  return [...new Set([encoded, decoded])];
}
