import type { Interruption } from '../shared/interrupt.js';
import type { openReadOnlyStore, openStore } from '../store/index.js';

/** What an action needs from the world beyond its command and output; tests pass their own. */
export interface ActionContext {
  openReadOnlyStore: typeof openReadOnlyStore;
  openStore: typeof openStore;
  interruption: Interruption;
}
