import { ConnectionString } from 'mongodb-connection-string-url';

const MASK = '****';

/**
 * A connection string's userinfo runs from `scheme://` to the LAST `@` of the token: a password with an
 * unescaped `/`, `:` or `@` (which the URI parser refuses) must not leak the part after the first of them.
 */
const URI_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s"'`<>]*)@/gi;

/** Shorter secrets are masked only inside connection strings: as bare words they would mask ordinary text. */
const BARE_SECRET_MIN_LENGTH = 6;

/** The URI as it may be shown: user kept, password masked (whole userinfo up to the last `@`). */
export function redactUri(uri: string): string {
  try {
    const parsed = new ConnectionString(uri);
    if (parsed.password) parsed.password = MASK;
    return parsed.toString();
  } catch {
    return redactText(uri);
  }
}

function maskUserinfo(_match: string, scheme: string, userinfo: string): string {
  const colon = userinfo.indexOf(':');
  return colon < 0 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, colon)}:${MASK}@`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Last line of defence for text that leaves the process (messages, logs, history records): masks the userinfo
 * of any connection string it contains, and the given secrets where they stand as whole words (a password
 * `west` must not turn `acme_west` into `acme_****`).
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let result = text.replace(URI_USERINFO, maskUserinfo);
  for (const secret of secrets) {
    if (secret.length < BARE_SECRET_MIN_LENGTH) continue;
    result = result.replace(
      new RegExp(`(?<![A-Za-z0-9_])${escapeRegExp(secret)}(?![A-Za-z0-9_])`, 'g'),
      MASK,
    );
  }
  return result;
}

/** Every string inside a value, redacted; numbers and the JSON structure are never touched. */
export function redactValue(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return redactText(value, secrets);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secrets));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, entry]) => [key, redactValue(entry, secrets)]),
    );
  }
  return value;
}

/**
 * The password of a URI in both spellings a message could carry it in (URL-encoded and decoded); the userinfo
 * ends at the last `@` before the host, as above.
 */
export function secretsOf(uri: string | undefined): string[] {
  if (!uri) return [];
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:([^\s]*)@[^@\s]*$/i.exec(uri);
  if (!match?.[1]) return [];
  const encoded = match[1];
  let decoded = encoded;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {}
  return [...new Set([encoded, decoded])];
}
