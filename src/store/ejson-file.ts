import { BSON, type Document } from 'mongodb';
import { canonicalJson } from './canonical-json.js';

/**
 * Extended JSON as mongoexport writes it, read without losing a number (see canonical-json.ts), then the BSON
 * values built by the driver's EJSON.
 */
export function parseExtendedJson(text: string): unknown {
  return reviveExtendedJson(canonicalJson(text));
}

export function reviveExtendedJson(canonical: unknown): unknown {
  return BSON.EJSON.deserialize(canonical as Document, { relaxed: false });
}

/** Canonical Extended JSON: every value keeps its BSON type when read back. */
export function stringifyExtendedJson(value: unknown): string {
  return `${BSON.EJSON.stringify(value, undefined, 2, { relaxed: false })}\n`;
}
