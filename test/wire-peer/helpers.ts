import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { type Document, MongoClient, type MongoClientOptions, MongoServerError } from 'mongodb';
import { startWirePeer, type WirePeer, type WirePeerOptions } from './index.js';

/** Documents with a number or string `_id` (the driver's default schema wants an ObjectId). */
export type AnyDocument = Document & { _id?: number | string };

/** A peer and a driver client connected to it, closed together. */
export async function withPeer(
  work: (peer: WirePeer, client: MongoClient) => Promise<void>,
  options: { peer?: WirePeerOptions; client?: MongoClientOptions; uri?: Record<string, string> } = {},
): Promise<void> {
  const peer = await startWirePeer(options.peer);
  const client = new MongoClient(peer.uri('', options.uri), {
    serverSelectionTimeoutMS: 3000,
    ...options.client,
  });
  try {
    await client.connect();
    await work(peer, client);
  } finally {
    await client.close();
    await peer.close();
  }
}

/** Asserts a server error: its code, and exactly these labels. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: number,
  labels: string[] = [],
  why = '',
): Promise<MongoServerError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(
    caught instanceof MongoServerError,
    `expected a server error ${code} ${why}, got ${String(caught)}`,
  );
  assert.equal(caught.code, code, caught.message);
  assert.deepEqual([...caught.errorLabels].sort(), [...labels].sort(), `labels of ${caught.message}`);
  return caught;
}

/** The log without the driver's handshakes and heartbeats. */
export function commandsOf(peer: WirePeer): WirePeer['log'] {
  return peer.log.filter((entry) => !entry.monitoring);
}

/** Waits until `check` holds (the driver's heartbeats come on their own clock), failing after `ms`. */
export async function eventually(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await delay(25);
  }
}
