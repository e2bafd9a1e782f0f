import { startWirePeer } from '../../test/wire-peer/index.js';
import type { BenchBackend } from './index.js';
import { serverBacking } from './mongo.js';

/** Command counts and memory of the tool, through the real driver; its times are the peer's, not a server's. */
export const peerBackend: BenchBackend = {
  label: 'wire peer',
  access: 'mongo',
  /** One round trip per document through the driver and the peer: bounded so the bench stays minutes long. */
  baselineMax: 10_000,
  copies: [['engine'], ['baseline']],
  async open() {
    const peer = await startWirePeer();
    return serverBacking({ uri: peer.uri(), stop: () => peer.close() });
  },
};
