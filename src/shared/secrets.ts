import { ConnectionString } from 'mongodb-connection-string-url';

const MASK = '****';

/**
 * A connection string's userinfo runs from `scheme://` to the LAST `@` of the token: a password with an
 * unescaped `/`, `:` or `@` (which the URI parser refuses) must not leak the part after the first of them.
 * A mistyped scheme is a scheme too (`mongodb:/`, `mongodb//`, `mongodb:`), and so is a user name followed by
 * its colon when there is no scheme at all (`ops:S3cret@host`): anything that looks like a URI is masked.
 */
const URI_USERINFO = /([a-z][a-z0-9+.-]*(?::\/{0,2}|\/{1,2}))([^\s"'`<>]*)@/gi;
const SCHEME_LIKE = /^[a-z][a-z0-9+.-]*(?::\/{0,2}|\/{1,2})/i;

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
  if (colon >= 0) return `${scheme}${userinfo.slice(0, colon)}:${MASK}@`;
  // `ops:S3cret@host`: what looked like a scheme was the user name, and this is its password.
  return scheme.includes('/') ? `${scheme}${userinfo}@` : `${scheme}${MASK}@`;
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
 * The password of a URI in both spellings a message could carry it in (URL-encoded and decoded). The userinfo
 * ends at the last `@`, as above, and begins after a scheme, a mistyped one included (`mongodb:/`, `mongodb//`,
 * `mongodb:`); with no scheme at all (`ops:S3cret@host`) it is the whole text before the `@`.
 */
export function secretsOf(uri: string | undefined): string[] {
  const text = uri?.trim() ?? '';
  const at = text.lastIndexOf('@');
  if (at < 0) return [];
  let userinfo = text.slice(0, at);
  const scheme = SCHEME_LIKE.exec(userinfo)?.[0];
  if (scheme && (scheme.includes('/') || userinfo.slice(scheme.length).includes(':'))) {
    userinfo = userinfo.slice(scheme.length);
  }
  const colon = userinfo.indexOf(':');
  if (colon < 0 || colon === userinfo.length - 1) return [];
  const encoded = userinfo.slice(colon + 1);
  let decoded = encoded;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {}
  return [...new Set([encoded, decoded])];
}
